# Makes tests/data/torch_transformer.safetensors (the layers' state dict under "enc." and
# "dec.") and tests/data/torch_transformer_io.safetensors (inputs and eval-mode outputs),
# which tests/transformer.rs compares with. torch 2.15, safetensors 0.8:
#     python3 tests/data/make_transformer.py
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
torch.backends.mha.set_fastpath_enabled(False)  # the reference math path, no nested tensors
enc = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1, activation="gelu",
                                       batch_first=True, norm_first=True)
dec = torch.nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.1, activation="relu",
                                       batch_first=True, norm_first=False)
with torch.no_grad():  # layer norms away from their (1, 0) initialisation
    for norm in [enc.norm1, enc.norm2, dec.norm1, dec.norm2, dec.norm3]:
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.3, 0.3)
    for attn in [enc.self_attn, dec.self_attn, dec.multihead_attn]:
        attn.in_proj_bias.uniform_(-0.2, 0.2)
        attn.out_proj.bias.uniform_(-0.2, 0.2)
enc.eval()
dec.eval()
x = torch.randn(2, 5, 8)
memory = torch.randn(2, 4, 8)
x_padding = torch.tensor([[False, False, False, False, True], [False] * 5])
memory_padding = torch.tensor([[False] * 4, [False, False, False, True]])
causal = torch.nn.Transformer.generate_square_subsequent_mask(5)
with torch.no_grad():
    enc_out = enc(x, src_key_padding_mask=x_padding)
    dec_out = dec(x, memory, tgt_mask=causal, memory_key_padding_mask=memory_padding)
state = {f"enc.{k}": v for k, v in enc.state_dict().items()}
state.update({f"dec.{k}": v for k, v in dec.state_dict().items()})
save_file(state, "torch_transformer.safetensors")
save_file({"x": x, "memory": memory, "enc_out": enc_out, "dec_out": dec_out}, "torch_transformer_io.safetensors")
print(sorted(state))
