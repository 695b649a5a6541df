//! concat/stack, index_select/index_add, gather/scatter_add and one_hot against naive
//! loops, on contiguous, permuted, narrowed, transposed and broadcast inputs.

mod common;

use agdlab_tensor::{Indices, Tensor, TensorError};
use common::{laid_out, ravel, unravel, LAYOUTS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn concat_and_stack_every_dim_and_layout() {
    let mut rng = StdRng::seed_from_u64(30);
    for dim in 0..3 {
        for (la, lb) in LAYOUTS.iter().zip(LAYOUTS.iter().cycle().skip(2)) {
            let mut sa = [3, 4, 5];
            let mut sb = [3, 4, 5];
            sa[dim] = 2;
            sb[dim] = 3;
            let a = laid_out(&sa, la, &mut rng);
            let b = laid_out(&sb, lb, &mut rng);
            let c = Tensor::concat(&[&a, &b, &a], dim);
            let mut shape = [3, 4, 5];
            shape[dim] = 7;
            assert_eq!(c.shape(), shape);
            let got = c.to_vec();
            for (flat, &g) in got.iter().enumerate() {
                let mut idx = unravel(flat, &shape);
                let i = idx[dim];
                let want = if i < 2 {
                    a.get(&idx)
                } else if i < 5 {
                    idx[dim] = i - 2;
                    b.get(&idx)
                } else {
                    idx[dim] = i - 5;
                    a.get(&idx)
                };
                assert_eq!(g, want, "concat {la}+{lb} dim {dim} at {flat}");
            }
        }
    }
    for dim in 0..4 {
        let xs: Vec<Tensor> = LAYOUTS
            .iter()
            .map(|l| laid_out(&[2, 3, 4], l, &mut rng))
            .collect();
        let s = Tensor::stack(&xs.iter().collect::<Vec<_>>(), dim);
        let mut shape = vec![2, 3, 4];
        shape.insert(dim, xs.len());
        assert_eq!(s.shape(), shape);
        for (flat, &g) in s.to_vec().iter().enumerate() {
            let mut idx = unravel(flat, &shape);
            let which = idx.remove(dim);
            assert_eq!(g, xs[which].get(&idx), "stack dim {dim} at {flat}");
        }
    }
}

#[test]
#[should_panic(expected = "concat: shapes [[2, 3], [2, 4]] differ outside dim 0")]
fn concat_panics_on_shape_mismatch() {
    Tensor::concat(&[&Tensor::zeros(&[2, 3]), &Tensor::zeros(&[2, 4])], 0);
}

#[test]
#[should_panic(expected = "stack: shapes [[2, 3], [3, 2]] differ")]
fn stack_panics_on_shape_mismatch() {
    Tensor::stack(&[&Tensor::zeros(&[2, 3]), &Tensor::zeros(&[3, 2])], 0);
}

#[test]
fn index_select_and_index_add_every_dim_and_layout() {
    let mut rng = StdRng::seed_from_u64(31);
    let shape = [4, 5, 6];
    for layout in LAYOUTS {
        let t = laid_out(&shape, layout, &mut rng);
        for dim in 0..3 {
            // Repeats, reordering, and an empty selection.
            for indices in [vec![1, 0, 3, 1, 1], vec![shape[dim] - 1], vec![]] {
                let sel = t.index_select(dim, &indices);
                let mut out_shape = shape.to_vec();
                out_shape[dim] = indices.len();
                assert_eq!(sel.shape(), out_shape);
                for (flat, &g) in sel.to_vec().iter().enumerate() {
                    let mut idx = unravel(flat, &out_shape);
                    idx[dim] = indices[idx[dim]];
                    assert_eq!(
                        g,
                        t.get(&idx),
                        "index_select {layout} dim {dim} {indices:?}"
                    );
                }

                let src = laid_out(&out_shape, layout, &mut rng);
                let added = t.index_add(dim, &indices, &src);
                let mut want: Vec<f64> = t.to_vec().iter().map(|&x| x as f64).collect();
                for (flat, &s) in src.to_vec().iter().enumerate() {
                    let mut idx = unravel(flat, &out_shape);
                    idx[dim] = indices[idx[dim]];
                    want[ravel(&idx, &shape)] += s as f64;
                }
                assert_eq!(added.shape(), shape);
                common::assert_close(
                    &added.to_vec(),
                    &want,
                    1e-6,
                    &format!("index_add {layout} dim {dim}"),
                );
            }
        }
    }
}

#[test]
#[should_panic(expected = "index_select: index 4 out of range for dim 0 of shape [4, 2]")]
fn index_select_panics_out_of_range() {
    Tensor::zeros(&[4, 2]).index_select(0, &[1, 4]);
}

#[test]
#[should_panic(expected = "index_add: source shape [3, 2] should be [2, 2]")]
fn index_add_panics_on_source_shape() {
    Tensor::zeros(&[4, 2]).index_add(0, &[1, 3], &Tensor::zeros(&[3, 2]));
}

#[test]
fn indices_new_checks_length() {
    let ok = Indices::new(vec![0, 1, 2, 0, 1, 2], &[2, 3]).unwrap();
    assert_eq!(ok.shape(), [2, 3]);
    assert_eq!(ok.data(), [0, 1, 2, 0, 1, 2]);
    assert_eq!((ok.rank(), ok.numel()), (2, 6));
    let err = Indices::new(vec![0, 1], &[3]).unwrap_err();
    assert!(
        matches!(
            err,
            TensorError::LengthMismatch {
                expected: 3,
                got: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn gather_and_scatter_add_every_dim_and_layout() {
    let mut rng = StdRng::seed_from_u64(32);
    let shape = [4, 5, 6];
    for layout in LAYOUTS {
        let t = laid_out(&shape, layout, &mut rng);
        for dim in 0..3 {
            // Index smaller than the input outside `dim`, and larger along `dim`
            // (repeats), as torch.gather allows.
            let mut ishape = [3, 4, 5];
            ishape[dim] = 7;
            let n: usize = ishape.iter().product();
            let data: Vec<usize> = (0..n).map(|_| rng.random_range(0..shape[dim])).collect();
            let index = Indices::new(data.clone(), &ishape).unwrap();

            let g = t.gather(dim, &index);
            assert_eq!(g.shape(), ishape);
            for (flat, &v) in g.to_vec().iter().enumerate() {
                let mut idx = unravel(flat, &ishape);
                idx[dim] = data[flat];
                assert_eq!(v, t.get(&idx), "gather {layout} dim {dim} at {flat}");
            }

            // src may be larger than the index: only its leading window is used.
            let src = laid_out(&ishape.map(|d| d + 1), layout, &mut rng);
            let out = t.scatter_add(dim, &index, &src);
            let mut want: Vec<f64> = t.to_vec().iter().map(|&x| x as f64).collect();
            for (flat, &i) in data.iter().enumerate() {
                let pos = unravel(flat, &ishape);
                let mut idx = pos.clone();
                idx[dim] = i;
                want[ravel(&idx, &shape)] += src.get(&pos) as f64;
            }
            assert_eq!(out.shape(), shape);
            common::assert_close(
                &out.to_vec(),
                &want,
                1e-6,
                &format!("scatter_add {layout} dim {dim}"),
            );
        }
    }
}

#[test]
fn gather_picks_class_scores() {
    // The cross-entropy use: pick each row's label score.
    let logits = Tensor::from_vec(vec![0.1, 0.7, 0.2, 0.5, 0.3, 0.2], &[2, 3]).unwrap();
    let labels = Indices::new(vec![1, 0], &[2, 1]).unwrap();
    assert_eq!(logits.gather(1, &labels).to_vec(), vec![0.7, 0.5]);
    let back = Tensor::zeros(&[2, 3]).scatter_add(1, &labels, &Tensor::ones(&[2, 1]));
    assert_eq!(back.to_vec(), Tensor::one_hot(&[1, 0], 3).to_vec());
}

#[test]
#[should_panic(expected = "gather: index 3 out of range for dim 1 of shape [2, 3]")]
fn gather_panics_out_of_range() {
    Tensor::zeros(&[2, 3]).gather(1, &Indices::new(vec![0, 3], &[2, 1]).unwrap());
}

#[test]
#[should_panic(expected = "gather: index shape [3, 1] does not fit input shape [2, 3]")]
fn gather_panics_on_index_shape() {
    Tensor::zeros(&[2, 3]).gather(1, &Indices::new(vec![0, 1, 2], &[3, 1]).unwrap());
}

#[test]
#[should_panic(expected = "scatter_add: index shape [2, 2] does not fit src shape [2, 1]")]
fn scatter_add_panics_on_small_src() {
    let index = Indices::new(vec![0, 1, 2, 0], &[2, 2]).unwrap();
    Tensor::zeros(&[2, 3]).scatter_add(1, &index, &Tensor::zeros(&[2, 1]));
}

#[test]
fn one_hot_rows() {
    let t = Tensor::one_hot(&[2, 0, 1], 3);
    assert_eq!(t.shape(), [3, 3]);
    assert_eq!(
        t.to_vec(),
        vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    );
}

#[test]
#[should_panic(expected = "one_hot: label 3 at position 1 is not below 3 classes")]
fn one_hot_panics_on_bad_label() {
    Tensor::one_hot(&[0, 3], 3);
}
