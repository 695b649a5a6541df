//! A tiny synthetic text corpus for the language-model smoke tests (no files needed).

/// Sentences over 12 words in which each word mostly decides the next one: `lines`
/// lines from a small linear congruential generator, so the test needs no files.
pub fn synthetic_text(lines: usize, seed: u64) -> String {
    let mut state = seed;
    let mut text = String::new();
    for _ in 0..lines {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut word = (state >> 33) % 12;
        for _ in 0..5 {
            text.push_str(&format!("w{word} "));
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // The next word is (3·word + 1) mod 12, except now and then.
            word = if (state >> 33).is_multiple_of(8) {
                (state >> 40) % 12
            } else {
                (3 * word + 1) % 12
            };
        }
        text.push('\n');
    }
    text
}

/// A PTB corpus from three synthetic texts (400 training lines, 60 validation and 60
/// test), with its 13-word vocabulary (w0..w11 and `<eos>`) checked.
pub fn tiny_ptb() -> agdlab::data::ptb::Ptb {
    use std::path::Path;
    let (train, valid, test) = (
        synthetic_text(400, 1),
        synthetic_text(60, 2),
        synthetic_text(60, 3),
    );
    let ptb = agdlab::data::ptb::Ptb::from_texts(
        (Path::new("train"), train.as_bytes()),
        (Path::new("valid"), valid.as_bytes()),
        (Path::new("test"), test.as_bytes()),
    )
    .unwrap();
    assert_eq!(ptb.vocab.len(), 13); // w0..w11 and <eos>
    ptb
}
