//! One input of the `ptb` fuzz target: how its bytes become the three PTB files and what
//! must hold of the answer. Shared, so that the fuzzer (`fuzz/fuzz_targets/ptb.rs`) and
//! the regression test replaying its findings (`tests/ptb.rs`, files under
//! `tests/data/fuzz/ptb/`) check exactly the same thing.
//!
//! The input is cut at its first two `0xFF` bytes (never part of UTF-8 text) into the
//! training, validation and test texts; a missing piece repeats the one before, so most
//! inputs reach the validation and test paths with words the vocabulary knows.
//!
//! The reader must answer with a corpus or a `DataError` naming one of the three files,
//! never a panic. A corpus must be what the format says: the training ids agree with a
//! plain re-reading of the text (each line's words, then `<eos>`), ids follow first
//! appearance, every id is in the vocabulary, and every split cut into streams and
//! windows gives back its tokens, each target the token after its input.

use std::path::Path;

use agdlab::data::ptb::{Ptb, Streams, EOS};
use agdlab::data::DataErrorKind;

/// Read `input` as the module documentation says and panic if an answer breaks a rule.
pub fn check(input: &[u8]) {
    let mut pieces = input.splitn(3, |&b| b == 0xFF);
    let train = pieces.next().unwrap_or_default();
    let valid = pieces.next().unwrap_or(train);
    let test = pieces.next().unwrap_or(valid);
    let names = [
        Path::new("train.txt"),
        Path::new("valid.txt"),
        Path::new("test.txt"),
    ];
    let texts = [train, valid, test];
    match Ptb::from_texts((names[0], train), (names[1], valid), (names[2], test)) {
        Ok(ptb) => check_corpus(&ptb, train),
        Err(e) => {
            let which = names
                .iter()
                .position(|&n| n == e.path())
                .expect("the error names one of the files");
            let lines = texts[which].split(|&b| b == b'\n').count();
            let line = match e.kind() {
                DataErrorKind::NotUtf8 { line, .. }
                | DataErrorKind::ControlCharacter { line, .. }
                | DataErrorKind::UnknownWord { line, .. } => Some(*line),
                DataErrorKind::NoText => {
                    assert!(
                        texts[which].is_empty(),
                        "NoText for a file of {} bytes",
                        texts[which].len()
                    );
                    None
                }
                other => panic!("unexpected error kind {other:?}"),
            };
            if let Some(line) = line {
                assert!(
                    (1..=lines).contains(&line),
                    "line {line} of a text with {lines} lines"
                );
            }
            let shown = e.to_string();
            assert!(
                shown.starts_with(&e.path().display().to_string()),
                "{shown}"
            );
        }
    }
}

fn check_corpus(ptb: &Ptb, train_text: &[u8]) {
    let vocab = &ptb.vocab;
    for (id, word) in vocab.words().iter().enumerate() {
        assert_eq!(vocab.id(word), Some(id), "{word:?}");
        assert!(
            !word.is_empty() && !word.chars().any(char::is_whitespace),
            "{word:?}"
        );
    }
    // A plain re-reading of the training text: every line's words, then <eos>.
    let text = std::str::from_utf8(train_text).expect("the corpus loaded, so the text is UTF-8");
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut expected: Vec<&str> = Vec::new();
    for line in body.split('\n') {
        expected.extend(line.split_whitespace());
        expected.push(EOS);
    }
    let got: Vec<&str> = ptb
        .train
        .iter()
        .map(|&id| vocab.word(id).expect("an id in the vocabulary"))
        .collect();
    assert_eq!(got, expected);
    // Ids in order of first appearance.
    let mut next = 0;
    for &id in &ptb.train {
        assert!(id <= next, "id {id} appears before id {next}");
        next = next.max(id + 1);
    }
    assert_eq!(next, vocab.len());
    for split in [&ptb.train, &ptb.valid, &ptb.test] {
        assert!(split.iter().all(|&id| id < vocab.len()));
        let batch = 1 + split.len() % 7;
        let seq = 1 + split.len() % 5;
        check_windows(split, batch, seq);
    }
}

/// The windows of `ids` in `batch` streams give back every stream, targets shifted by one.
fn check_windows(ids: &[usize], batch: usize, seq: usize) {
    let streams = Streams::new(ids, batch);
    let rows = ids.len() / batch;
    assert_eq!((streams.rows(), streams.batch()), (rows, batch));
    let mut seen = 0;
    for w in 0..streams.windows(seq) {
        let window = streams.window(w, seq);
        assert!(window.len >= 1 && window.len <= seq);
        assert_eq!(
            (window.inputs.len(), window.targets.len()),
            (window.len * batch, window.len * batch)
        );
        for t in 0..window.len {
            for b in 0..batch {
                let row = w * seq + t;
                assert_eq!(window.inputs[t * batch + b], ids[b * rows + row]);
                assert_eq!(window.targets[t * batch + b], ids[b * rows + row + 1]);
            }
        }
        seen += window.len * batch;
    }
    assert_eq!(seen, streams.predictions());
}
