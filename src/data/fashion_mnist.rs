//! Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 70,000 28x28 grayscale images of
//! clothing in 10 classes, in the same four IDX files as MNIST, so it loads into the
//! same [`Mnist`] type. Not committed: the examples find it with
//! [`find_dataset`](super::find_dataset) (flag, `$AGDLAB_FASHION_MNIST`,
//! `$AGDLAB_DATA/fashion-mnist`, `data/fashion-mnist`, `../shared/data/fashion-mnist`).

use std::path::Path;

use super::locate;
use super::mnist::{required_files, Mnist};
use super::DataError;

/// Mean pixel of the Fashion-MNIST training images, scaled to [0, 1].
pub const FASHION_MNIST_MEAN: f32 = 0.2860;
/// Standard deviation of the Fashion-MNIST training pixels, scaled to [0, 1].
pub const FASHION_MNIST_STD: f32 = 0.3530;

/// The environment variable naming the Fashion-MNIST directory.
pub const FASHION_MNIST_ENV: &str = "AGDLAB_FASHION_MNIST";

/// The ten class names, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Find Fashion-MNIST (the `flag` given on the command line first) and load it with
/// [`Mnist::load_limited`]: the first `train_items` training examples (all when
/// `None`) and the whole test split, standardised with [`FASHION_MNIST_MEAN`] and
/// [`FASHION_MNIST_STD`].
///
/// # Errors
/// When it is found nowhere (the error lists every place looked and where to put the
/// files) or a file is invalid (the error names the file).
pub fn load_fashion_mnist(
    flag: Option<&Path>,
    train_items: Option<usize>,
) -> Result<Mnist, DataError> {
    let required = required_files();
    let required: Vec<&str> = required.iter().map(String::as_str).collect();
    let dir = locate::find_dataset("fashion-mnist", flag, FASHION_MNIST_ENV, &required)?;
    let mut data = Mnist::load_limited(&dir, train_items)?;
    data.train.normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD);
    data.test.normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD);
    Ok(data)
}
