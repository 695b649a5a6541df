//! A tiny synthetic text corpus for the language-model smoke tests (no files needed).

/// Sentences over 12 words in which each word mostly decides the next one: `lines`
/// lines from a small linear congruential generator, so the test needs no files.
pub fn synthetic_text(lines: usize, seed: u64) -> String {
    let mut state = seed;
    let mut text = String::new();
    for _ in 0..lines {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut word = (state >> 33) % 12;
        for _ in 0..5 {
            text.push_str(&format!("w{word} "));
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // The next word is (3·word + 1) mod 12, except now and then.
            word = if (state >> 33) % 8 == 0 { (state >> 40) % 12 } else { (3 * word + 1) % 12 };
        }
        text.push('\n');
    }
    text
}
