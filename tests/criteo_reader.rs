//! The Criteo reader on small files made here (tab-separated, comma-separated with a
//! header, gzip'd, CRLF, blank lines, malformed lines), on the real 200-line sample when
//! it is present (it is not committed: see data/README.md), and on every input the
//! `criteo` fuzz target flagged.

mod common;
mod fuzz_ctr;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use agdlab::data::criteo::{
    bucket, field_names, read_criteo, read_criteo_from, CriteoOptions, IntegerEncoding,
};
use agdlab::data::ctr::{feature_row, Token};
use agdlab::data::{find_dataset, CtrExamples, DataErrorKind};
use common::temp_dir;

/// A line's 40 fields: the label, 13 integers, 26 categories ("" for missing).
fn fields(label: &str, integers: [&str; 13], categories: [&str; 26]) -> Vec<String> {
    std::iter::once(label)
        .chain(integers)
        .chain(categories)
        .map(String::from)
        .collect()
}

fn example_lines() -> Vec<Vec<String>> {
    let mut categories = ["0a1b2c3d"; 26];
    categories[1] = "ffffffff";
    categories[5] = "";
    categories[25] = "00000000";
    vec![
        fields(
            "0",
            [
                "", "3", "260.0", "", "17668.0", "", "", "33.0", "", "", "", "0.0", "",
            ],
            categories,
        ),
        fields(
            "1",
            ["1", "-1", "2", "1000", "", "", "", "", "", "", "", "", "7"],
            ["deadbeef"; 26],
        ),
        fields("0", [""; 13], [""; 26]),
    ]
}

fn tab_file(lines: &[Vec<String>]) -> String {
    lines.iter().map(|l| l.join("\t") + "\n").collect()
}

fn csv_file(lines: &[Vec<String>]) -> String {
    let header = std::iter::once("label".to_string())
        .chain(field_names())
        .collect::<Vec<_>>()
        .join(",");
    std::iter::once(header + "\n")
        .chain(lines.iter().map(|l| l.join(",") + "\n"))
        .collect()
}

fn read(text: &[u8], options: &CriteoOptions) -> CtrExamples {
    let (examples, skipped) = read_criteo_from(text, Path::new("test.txt"), options).unwrap();
    assert_eq!(skipped.count, 0);
    examples
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn tab_separated_comma_separated_with_header_and_gzip_read_the_same() {
    let options = CriteoOptions::default();
    let lines = example_lines();
    let from_tabs = read(tab_file(&lines).as_bytes(), &options);
    assert_eq!(from_tabs.len(), 3);
    assert_eq!(from_tabs.labels(), [0.0, 1.0, 0.0]);
    assert_eq!(read(csv_file(&lines).as_bytes(), &options), from_tabs);
    assert_eq!(
        read(&gzip(tab_file(&lines).as_bytes()), &options),
        from_tabs
    );
    // CRLF line ends, a blank line and no final newline change nothing.
    let crlf = tab_file(&lines)
        .replace('\n', "\r\n")
        .replacen("\r\n", "\r\n\r\n", 1);
    assert_eq!(
        read(crlf.strip_suffix("\r\n").unwrap().as_bytes(), &options),
        from_tabs
    );
    // From a file, gzip'd or not.
    let dir = temp_dir("criteo");
    fs::write(dir.join("train.txt"), tab_file(&lines)).unwrap();
    fs::write(dir.join("train.txt.gz"), gzip(csv_file(&lines).as_bytes())).unwrap();
    for name in ["train.txt", "train.txt.gz"] {
        let (examples, _) = read_criteo(&dir.join(name), &options).unwrap();
        assert_eq!(examples, from_tabs, "{name}");
    }
}

#[test]
fn fields_become_the_documented_features() {
    let table = 1 << 20;
    let lines = example_lines();
    let bucketed = read(
        tab_file(&lines).as_bytes(),
        &CriteoOptions {
            table_size: table,
            ..Default::default()
        },
    );
    assert!(bucketed.values().is_none());
    let row = |field, token| feature_row(field, token, table);
    let first = &bucketed.ids()[..39];
    // I1 missing; I2 = 3 -> bucket ⌊(ln 3)²⌋ = 1; I3 = 260 -> ⌊(ln 260)²⌋ = 30;
    // I5 = 17668 -> 95; I8 = 33 -> 12; I12 = 0 -> 0.
    let expected_integers = [
        row(0, Token::Missing),
        row(1, Token::Bucket(1)),
        row(2, Token::Bucket(30)),
        row(3, Token::Missing),
        row(4, Token::Bucket(95)),
        row(5, Token::Missing),
        row(6, Token::Missing),
        row(7, Token::Bucket(12)),
        row(8, Token::Missing),
        row(9, Token::Missing),
        row(10, Token::Missing),
        row(11, Token::Bucket(0)),
        row(12, Token::Missing),
    ];
    assert_eq!(first[..13], expected_integers);
    assert_eq!(first[13], row(13, Token::Category(0x0a1b_2c3d)));
    assert_eq!(first[14], row(14, Token::Category(0xffff_ffff)));
    assert_eq!(first[18], row(18, Token::Missing));
    assert_eq!(first[38], row(38, Token::Category(0)));
    // The same category in two fields is two features.
    assert_ne!(first[13], first[15 + 1]);
    assert_eq!(
        bucketed.ids()[39 + 1],
        row(1, Token::Bucket(-1)),
        "I2 = -1 is its own bucket"
    );

    // Log: one numeric feature per integer field, valued sign(x)·ln(1 + |x|); a missing
    // integer is the field's missing feature with value 1; categories have value 1.
    let logged = read(
        tab_file(&lines).as_bytes(),
        &CriteoOptions {
            integers: IntegerEncoding::Log,
            ..Default::default()
        },
    );
    let values = logged.values().unwrap();
    let default_table = CriteoOptions::default().table_size;
    assert_eq!(
        logged.ids()[2],
        feature_row(2, Token::Numeric, default_table)
    );
    assert_eq!(
        logged.ids()[0],
        feature_row(0, Token::Missing, default_table)
    );
    assert!((values[2] - 261f32.ln()).abs() < 1e-6, "{}", values[2]);
    assert_eq!(values[0], 1.0);
    assert_eq!(values[11], 0.0, "I12 = 0 -> ln 1 = 0");
    assert!(
        (values[39 + 1] + 2f32.ln()).abs() < 1e-6,
        "I2 = -1 -> -ln 2"
    );
    assert!(values[13..39].iter().all(|&v| v == 1.0));
}

#[test]
fn buckets_follow_the_published_rule() {
    // x <= 2: ⌊x⌋; x > 2: ⌊(ln x)²⌋ (Juan et al. 2016, the winning Kaggle solution).
    let cases = [
        (-3.0, -3),
        (-1.0, -1),
        (0.0, 0),
        (0.5, 0),
        (1.0, 1),
        (2.0, 2),
        (2.5, 0),
        (3.0, 1),
        (10.0, 5),
    ];
    for (x, want) in cases {
        assert_eq!(bucket(x), want, "x = {x}");
    }
    assert_eq!(bucket(1000.0), 47);
    assert_eq!(bucket(1e9), 429);
}

/// The error for `text`, which must be malformed on `line`.
fn malformed(text: &str, line: usize) -> String {
    let err = read_criteo_from(
        text.as_bytes(),
        Path::new("clicks.txt"),
        &CriteoOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err.kind(), DataErrorKind::Malformed { line: l, .. } if *l == line),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("clicks.txt:{line}: ")),
        "{message}"
    );
    message
}

#[test]
fn malformed_lines_are_errors_naming_file_line_and_field() {
    let lines = example_lines();
    let good = tab_file(&lines);
    let mut short = lines.clone();
    short[1].pop();
    assert!(malformed(&tab_file(&short), 2).contains("39 tab-separated field(s), expected 40"));
    let mut bad_label = lines.clone();
    bad_label[0][0] = "2".into();
    assert!(malformed(&tab_file(&bad_label), 1).contains("label \"2\" is not 0 or 1"));
    let mut bad_integer = lines.clone();
    bad_integer[2][3] = "2x".into();
    assert!(malformed(&tab_file(&bad_integer), 3).contains("field I3: \"2x\" is not a number"));
    let mut infinite = lines.clone();
    infinite[2][1] = "inf".into();
    assert!(malformed(&tab_file(&infinite), 3).contains("field I1: \"inf\" is not a number"));
    let mut bad_category = lines.clone();
    bad_category[1][14 + 4] = "xyz".into();
    assert!(malformed(&tab_file(&bad_category), 2)
        .contains("field C5: \"xyz\" is not a hexadecimal category"));
    // The header is checked: an Avazu file is not a Criteo file.
    let avazu = "id,click,hour,C1,banner_pos,site_id\n1,0,14102100,1005,0,1fbe01fe\n";
    assert!(malformed(avazu, 1)
        .contains("a header of 6 column(s) (id, click, hour, C1, banner_pos, site_id)"));
    // Line numbers count every line, the header and blank lines included.
    let with_blank = format!(
        "{}\n{}",
        csv_file(&lines[..1]),
        tab_file(&short[1..2]).replace('\t', ",")
    );
    assert!(malformed(&with_blank, 4).contains("39 comma-separated field(s)"));
    assert_eq!(read(good.as_bytes(), &CriteoOptions::default()).len(), 3);
}

#[test]
fn skipping_malformed_lines_counts_them_and_keeps_the_rest() {
    let lines = example_lines();
    let mut broken = lines.clone();
    broken[0][0] = "yes".into();
    broken[2][20] = "0x12".into();
    let options = CriteoOptions {
        skip_malformed: true,
        ..Default::default()
    };
    let (examples, skipped) =
        read_criteo_from(tab_file(&broken).as_bytes(), Path::new("c.txt"), &options).unwrap();
    assert_eq!(examples.len(), 1);
    assert_eq!(
        examples,
        read(tab_file(&lines[1..2]).as_bytes(), &CriteoOptions::default())
    );
    assert_eq!(skipped.count, 2);
    let message = skipped.to_string();
    assert!(
        message.starts_with("skipped 2 malformed line(s); the first: c.txt:1: label \"yes\""),
        "{message}"
    );
}

#[test]
fn max_examples_stops_early_and_missing_files_are_named() {
    let lines = example_lines();
    let options = CriteoOptions {
        max_examples: Some(2),
        ..Default::default()
    };
    // The third line is malformed, but never read.
    let mut third_bad = lines.clone();
    third_bad[2][0] = "x".into();
    let (examples, _) =
        read_criteo_from(tab_file(&third_bad).as_bytes(), Path::new("c"), &options).unwrap();
    assert_eq!(examples.len(), 2);
    let err = read_criteo(
        Path::new("/nonexistent/train.txt"),
        &CriteoOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err.kind(), DataErrorKind::Io(_)));
    assert!(
        err.to_string().starts_with("/nonexistent/train.txt: "),
        "{err}"
    );
}

fn sample() -> Option<PathBuf> {
    match find_dataset(
        "ctr-samples",
        None,
        "AGDLAB_CTR_SAMPLES",
        &["criteo_sample.txt"],
    ) {
        Ok(dir) => Some(dir.join("criteo_sample.txt")),
        Err(e) => {
            println!(
                "skipped: the Criteo sample is not here (not committed; see data/README.md):\n{e}"
            );
            None
        }
    }
}

#[test]
fn the_criteo_sample_reads_with_its_header() {
    let Some(path) = sample() else { return };
    let table = 1 << 20;
    let (examples, skipped) = read_criteo(
        &path,
        &CriteoOptions {
            table_size: table,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(skipped.count, 0);
    assert_eq!(examples.len(), 200);
    assert_eq!(examples.labels().iter().filter(|&&y| y == 1.0).count(), 49);
    // Its first line: 0,,3,260.0,,17668.0,,,33.0,,,,0.0,,05db9164,08d6d899,...,c0d61a5c,,
    let first = &examples.ids()[..39];
    assert_eq!(first[0], feature_row(0, Token::Missing, table));
    assert_eq!(first[2], feature_row(2, Token::Bucket(30), table));
    assert_eq!(
        first[13],
        feature_row(13, Token::Category(0x05db_9164), table)
    );
    assert_eq!(
        first[14],
        feature_row(14, Token::Category(0x08d6_d899), table)
    );
    assert_eq!(first[38], feature_row(38, Token::Missing, table));
}

#[test]
fn fuzz_findings_stay_fixed() {
    // Every input the `criteo` fuzz target (fuzz/) flagged, replayed through the same
    // checks (tests/fuzz_ctr/mod.rs) on stable, after a few inputs made here.
    let lines = example_lines();
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for control in [0x00, 0x01, 0x02, 0x03, 0x04, 0x08, 0x3c, 0xf1, 0xf0] {
        for file in [
            tab_file(&lines),
            csv_file(&lines),
            tab_file(&lines)[..100].to_string(),
        ] {
            inputs.push([&[control][..], file.as_bytes()].concat());
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz/criteo");
    if let Ok(entries) = fs::read_dir(&dir) {
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        inputs.extend(paths.iter().map(|p| fs::read(p).unwrap()));
    }
    for input in inputs {
        fuzz_ctr::check_criteo(&input);
    }
}
