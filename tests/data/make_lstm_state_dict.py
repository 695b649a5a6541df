# Makes tests/data/torch_lstm.safetensors (a 2-layer nn.LSTM's state dict) and
# tests/data/torch_lstm_io.safetensors (an input, an initial state, PyTorch's outputs,
# final state and gradients), which tests/lstm_pytorch.rs compares with.
# Run from tests/data with torch 2.15 and safetensors 0.8: python3 make_lstm_state_dict.py
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
lstm = torch.nn.LSTM(input_size=3, hidden_size=4, num_layers=2)  # seq-first, no dropout
x = torch.randn(5, 2, 3, requires_grad=True)  # [seq, batch, in]
h0 = torch.randn(2, 2, 4, requires_grad=True)  # [layers, batch, hidden]
c0 = torch.randn(2, 2, 4, requires_grad=True)
out, (hn, cn) = lstm(x, (h0, c0))
# A loss that weights every output element differently, so the gradients check the backward.
w_out, w_h, w_c = torch.randn(5, 2, 4), torch.randn(2, 2, 4), torch.randn(2, 2, 4)
loss = (out * w_out).sum() + (hn * w_h).sum() + (cn * w_c).sum()
loss.backward()

save_file(lstm.state_dict(), "torch_lstm.safetensors")
io = {"x": x, "h0": h0, "c0": c0, "output": out, "h_n": hn, "c_n": cn, "w_out": w_out, "w_h": w_h, "w_c": w_c}
io = {k: v.detach().contiguous() for k, v in io.items()}
io.update({"grad_x": x.grad, "grad_h0": h0.grad, "grad_c0": c0.grad})
io.update({"grad_" + k: p.grad for k, p in lstm.named_parameters()})
save_file(io, "torch_lstm_io.safetensors")
for k, v in lstm.state_dict().items():
    print(k, list(v.shape))
print("output[0]", out[0].flatten().tolist())
print("h_n", hn.flatten().tolist())
