//! The Penn Treebank language-modelling corpus (Mikolov's word-level version) and the
//! batching of a token stream for truncated back-propagation through time.
//!
//! # The files
//!
//! Three text files, `ptb.train.txt`, `ptb.valid.txt` and `ptb.test.txt`: one sentence
//! per line, words separated by spaces, rare words already replaced by `<unk>` and
//! numbers by `N`. They are not in this repository (their licence forbids
//! redistribution); [`Ptb::locate_and_load`] finds them as every example finds its data
//! (see [`find_dataset`](super::find_dataset)).
//!
//! # Words to ids
//!
//! Each line becomes its words followed by [`EOS`] (`<eos>`), so the model learns where
//! sentences end. The vocabulary is built from the training file alone: ids are given
//! in order of first appearance, reading the file from the start, `<eos>` included where
//! the first line ends. This is the order of PyTorch's `word_language_model` example
//! (`data.py`), so ids agree with it; on PTB, `aer` is 0 and `<eos>` is 24, and there
//! are 10,000 words including `<unk>` and `<eos>`. A word of the validation or test file
//! that the training file lacks is an error (PTB has none: `<unk>` already stands for
//! every rare word).
//!
//! Files come from outside, so nothing here panics on their content: a file that is
//! missing, not UTF-8, holds control characters (a binary file?), holds no text at all,
//! or uses an unknown word gives a [`DataError`] naming the file and the line, for
//! example `ptb.valid.txt:12: word "zyzzyva" is not in the vocabulary built from
//! ptb.train.txt`.
//!
//! # Batching
//!
//! [`Streams`] lays a token sequence out as `batch` parallel streams (the sequence cut
//! into `batch` equal consecutive pieces, the remainder dropped), and
//! [`Streams::window`] cuts `seq`-step windows from all streams at once: the model reads
//! `inputs[t][b]` and predicts `targets[t][b]`, the next token of stream `b`. Carrying
//! the LSTM's state from one window to the next (detached) is truncated BPTT.
//!
//! ```text
//! tokens 0 1 2 3 4 5 6 7 8 9 10 11, batch 3:   stream 0: 0 1 2 3
//!                                              stream 1: 4 5 6 7
//!                                              stream 2: 8 9 10 11
//! window 0 with seq 2: inputs  [[0, 4, 8], [1, 5, 9]]     targets [[1, 5, 9], [2, 6, 10]]
//! window 1:            inputs  [[2, 6, 10]]               targets [[3, 7, 11]]
//! ```
//!
//! PyTorch equivalent: `batchify` and `get_batch` in `word_language_model/main.py`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{locate, DataError, DataErrorKind};

/// The training file's name.
pub const TRAIN_FILE: &str = "ptb.train.txt";
/// The validation file's name.
pub const VALID_FILE: &str = "ptb.valid.txt";
/// The test file's name.
pub const TEST_FILE: &str = "ptb.test.txt";
/// The environment variable that points at the PTB directory.
pub const PTB_ENV: &str = "AGDLAB_PTB";
/// The token that ends every line.
pub const EOS: &str = "<eos>";
/// The token PTB uses for every rare word.
pub const UNK: &str = "<unk>";

/// Words and their ids, in order of first appearance in the training text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vocabulary {
    words: Vec<String>,
    ids: HashMap<String, usize>,
}

impl Vocabulary {
    /// The number of words (PTB: 10,000).
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The id of `word`, if the vocabulary has it.
    pub fn id(&self, word: &str) -> Option<usize> {
        self.ids.get(word).copied()
    }

    /// The word with id `id`, if there is one.
    pub fn word(&self, id: usize) -> Option<&str> {
        self.words.get(id).map(String::as_str)
    }

    /// Every word, by id.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The id of `word`, adding it when new.
    fn insert(&mut self, word: &str) -> usize {
        if let Some(&id) = self.ids.get(word) {
            return id;
        }
        self.words.push(word.to_string());
        self.ids.insert(word.to_string(), self.words.len() - 1);
        self.words.len() - 1
    }
}

/// The three splits as token ids, and the vocabulary they use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ptb {
    pub vocab: Vocabulary,
    pub train: Vec<usize>,
    pub valid: Vec<usize>,
    pub test: Vec<usize>,
}

impl Ptb {
    /// The three files of [`required_files`] from `dir`.
    ///
    /// # Errors
    /// A [`DataError`] naming the file (and line) when a file cannot be read or its text
    /// is malformed; see the [module documentation](self).
    pub fn load(dir: &Path) -> Result<Ptb, DataError> {
        let read = |name: &str| -> Result<(PathBuf, Vec<u8>), DataError> {
            let path = dir.join(name);
            if path.is_dir() {
                return Err(DataError::new(&path, DataErrorKind::IsADirectory));
            }
            let bytes = fs::read(&path).map_err(|e| DataError::new(&path, DataErrorKind::Io(e)))?;
            Ok((path, bytes))
        };
        let (train, valid, test) = (read(TRAIN_FILE)?, read(VALID_FILE)?, read(TEST_FILE)?);
        Ptb::from_texts(
            (&train.0, &train.1),
            (&valid.0, &valid.1),
            (&test.0, &test.1),
        )
    }

    /// Find the PTB directory (the `flag`, then `$AGDLAB_PTB`, then the usual places; see
    /// [`find_dataset`](super::find_dataset)) and load it.
    ///
    /// # Errors
    /// As [`find_dataset`](super::find_dataset) when no place holds the three files
    /// (the message lists where it looked and where to put them), then as
    /// [`Ptb::load`].
    pub fn locate_and_load(flag: Option<&Path>) -> Result<Ptb, DataError> {
        let dir = locate::find_dataset("ptb", flag, PTB_ENV, &required_files())?;
        Ptb::load(&dir)
    }

    /// The corpus from the three files' contents; each comes with the path its errors
    /// name. The byte-slice entry point (the fuzz target `ptb` calls it).
    ///
    /// # Errors
    /// As [`Ptb::load`], after reading.
    pub fn from_texts(
        train: (&Path, &[u8]),
        valid: (&Path, &[u8]),
        test: (&Path, &[u8]),
    ) -> Result<Ptb, DataError> {
        let mut vocab = Vocabulary::default();
        let train_ids = tokenize(train.1, train.0, |word, _| Ok(vocab.insert(word)))?;
        let known = |path: &Path, word: &str, line: usize| {
            vocab.id(word).ok_or_else(|| {
                let vocabulary_file = train.0.to_path_buf();
                let kind = DataErrorKind::UnknownWord {
                    line,
                    word: word.to_string(),
                    vocabulary_file,
                };
                DataError::new(path, kind)
            })
        };
        let valid_ids = tokenize(valid.1, valid.0, |word, line| known(valid.0, word, line))?;
        let test_ids = tokenize(test.1, test.0, |word, line| known(test.0, word, line))?;
        Ok(Ptb {
            vocab,
            train: train_ids,
            valid: valid_ids,
            test: test_ids,
        })
    }
}

/// The file names [`find_dataset`](super::find_dataset) looks for.
pub fn required_files() -> [&'static str; 3] {
    [TRAIN_FILE, VALID_FILE, TEST_FILE]
}

/// The ids of `text`'s words, each line's followed by `<eos>`'s; `id_of(word, line)`
/// gives a word's id (`line` is 1-based, for its errors). A last line without a final
/// newline counts as a line.
///
/// # Errors
/// A [`DataError`] naming `path` and the line: not UTF-8, a control character other
/// than whitespace, no text at all ([`DataErrorKind::NoText`]), or what `id_of` returns.
pub fn tokenize(
    text: &[u8],
    path: &Path,
    mut id_of: impl FnMut(&str, usize) -> Result<usize, DataError>,
) -> Result<Vec<usize>, DataError> {
    if text.is_empty() {
        return Err(DataError::new(path, DataErrorKind::NoText));
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut ids = Vec::with_capacity(text.len() / 5);
    for (index, line) in body.split(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        let line = std::str::from_utf8(line).map_err(|e| {
            DataError::new(
                path,
                DataErrorKind::NotUtf8 {
                    line: number,
                    column: e.valid_up_to() + 1,
                },
            )
        })?;
        if let Some((column, found)) = line
            .chars()
            .enumerate()
            .find(|(_, c)| c.is_control() && !c.is_whitespace())
        {
            let kind = DataErrorKind::ControlCharacter {
                line: number,
                column: column + 1,
                found,
            };
            return Err(DataError::new(path, kind));
        }
        for word in line.split_whitespace() {
            ids.push(id_of(word, number)?);
        }
        ids.push(id_of(EOS, number)?);
    }
    Ok(ids)
}

/// A token sequence as `batch` parallel streams of `rows` tokens each: stream `b` is
/// tokens `b·rows .. (b+1)·rows`; the last `len % batch` tokens are dropped.
/// PyTorch equivalent: `batchify(data, batch)` (`data.view(batch, -1).t()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Streams {
    /// `[rows, batch]`, row-major: `data[r * batch + b]` is token `r` of stream `b`.
    data: Vec<usize>,
    rows: usize,
    batch: usize,
}

/// One window of [`Streams`]: `len` steps of every stream, and the next token of each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// `[len, batch]` row-major: `inputs[t * batch + b]`.
    pub inputs: Vec<usize>,
    /// `[len, batch]`: the token after each input in its stream.
    pub targets: Vec<usize>,
    /// The number of steps (`seq`, or fewer for the last window).
    pub len: usize,
}

impl Streams {
    /// Lay `ids` out as `batch` streams.
    ///
    /// # Panics
    /// When `batch` is 0.
    pub fn new(ids: &[usize], batch: usize) -> Streams {
        assert!(batch > 0, "Streams: batch must be at least 1");
        let rows = ids.len() / batch;
        let mut data = vec![0; rows * batch];
        for b in 0..batch {
            for r in 0..rows {
                data[r * batch + b] = ids[b * rows + r];
            }
        }
        Streams { data, rows, batch }
    }

    /// Tokens per stream.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of streams.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The number of predictions in a pass over all windows: `(rows - 1)·batch`.
    pub fn predictions(&self) -> usize {
        self.rows.saturating_sub(1) * self.batch
    }

    /// The number of windows of at most `seq` steps: `⌈(rows - 1)/seq⌉` (0 when a stream
    /// has fewer than 2 tokens: nothing to predict).
    ///
    /// # Panics
    /// When `seq` is 0.
    pub fn windows(&self, seq: usize) -> usize {
        assert!(seq > 0, "Streams: seq must be at least 1");
        self.rows.saturating_sub(1).div_ceil(seq)
    }

    /// Window `index` of at most `seq` steps: steps `index·seq ..` of every stream, with
    /// the tokens that follow them as targets. PyTorch equivalent: `get_batch(source, i)`
    /// with `i = index·seq`.
    ///
    /// # Panics
    /// When `index >= self.windows(seq)`.
    pub fn window(&self, index: usize, seq: usize) -> Window {
        assert!(
            index < self.windows(seq),
            "Streams::window: window {index} of {} (seq {seq}, {} rows)",
            self.windows(seq),
            self.rows
        );
        let start = index * seq;
        let len = seq.min(self.rows - 1 - start);
        let b = self.batch;
        Window {
            inputs: self.data[start * b..(start + len) * b].to_vec(),
            targets: self.data[(start + 1) * b..(start + 1 + len) * b].to_vec(),
            len,
        }
    }
}
