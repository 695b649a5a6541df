//! The MovieLens-100k reader on small files made here, on the real files when they are
//! present (they are not committed: see data/README.md), and on every input the
//! `movielens` fuzz target flagged.
//!
//! The real-data test checks the seed-0 split against `benches/pytorch_fm.py`, which
//! builds the same examples and split in Python; this printed the values used below:
//!
//! ```text
//! import sys; sys.path.insert(0, "benches"); import pytorch_fm as p
//! ids, labels, n = p.load_movielens("../shared/data/movielens-100k")
//! print(n, ids[:2].tolist(), labels[:2].tolist(), int(labels.sum()))
//! (tr, ytr), (te, yte) = p.split(ids, labels, 0)
//! print(tr[:3].tolist(), ytr[:3].tolist(), te[:2].tolist(), int(ytr.sum()), int(yte.sum()))
//! # 2655 [[195, 1184, 2629, 2632, 2654], [185, 1244, 2628, 2633, 2640]] [0.0, 0.0] 55375
//! # [[681, 1008, 2626, 2632, 2648], [327, 1024, 2630, 2632, 2634], [181, 1053, 2628, 2632, 2648]]
//! #   [0.0, 1.0, 1.0] [[177, 1073, 2627, 2632, 2647], [285, 1710, 2627, 2632, 2652]] 44306 11069
//! ```

mod common;
mod fuzz_ctr;

use std::fs;
use std::path::{Path, PathBuf};

use agdlab::data::movielens::{self, MovieLens};
use agdlab::data::{find_dataset, DataErrorKind};
use common::temp_dir;

const USERS: &str = "7|24|M|technician|85711\n2|53|F|other|94043\n3|17|M|writer|32067\n";
const RATINGS: &str =
    "7\t50\t4\t881250949\n2\t10\t3\t891717742\n3\t50\t1\t878887116\n7\t10\t5\t880606923\n";

fn read(
    users: &str,
    ratings: &str,
    skip: bool,
) -> Result<(MovieLens, agdlab::data::Skipped), agdlab::data::DataError> {
    MovieLens::from_readers(
        ratings.as_bytes(),
        Path::new("u.data"),
        users.as_bytes(),
        Path::new("u.user"),
        skip,
    )
}

#[test]
fn ratings_become_five_fields_laid_out_by_offsets() {
    let (data, skipped) = read(USERS, RATINGS, false).unwrap();
    assert_eq!(skipped.count, 0);
    // Users 2, 3, 7 -> rows 0, 1, 2; items 10, 50 -> 3, 4; ages 24, 53, 17 -> buckets
    // 18-24 (1), 50-55 (5), under 18 (0) at 5..12; M, F at 12, 13; occupations other,
    // technician, writer (byte order) at 14, 15, 16.
    assert_eq!(data.field_sizes, [3, 2, 7, 2, 3]);
    assert_eq!(data.table_size(), 17);
    assert_eq!(
        data.examples.ids(),
        [
            2, 4, 6, 12, 15, // user 7 rates item 50 a 4
            0, 3, 10, 13, 14, // user 2 rates item 10 a 3
            1, 4, 5, 12, 16, // user 3 rates item 50 a 1
            2, 3, 6, 12, 15, // user 7 rates item 10 a 5
        ]
    );
    assert_eq!(
        data.examples.labels(),
        [1.0, 0.0, 0.0, 1.0],
        "a rating of 4 or more is a click"
    );
    let split = data.split(0);
    assert_eq!((split.train.len(), split.test.len()), (4, 0));
    assert_eq!(split.field_names, movielens::FIELD_NAMES);
}

#[test]
fn age_buckets_are_movielens_1ms() {
    let ages = [
        (0, 0),
        (17, 0),
        (18, 1),
        (24, 1),
        (25, 2),
        (34, 2),
        (35, 3),
        (44, 3),
        (45, 4),
        (49, 4),
        (50, 5),
        (55, 5),
        (56, 6),
        (90, 6),
    ];
    for (age, bucket) in ages {
        let (data, _) = read(&format!("1|{age}|F|artist|00000\n"), "1\t1\t5\t0\n", false).unwrap();
        assert_eq!(data.examples.ids()[2] as usize, 2 + bucket, "age {age}");
    }
}

/// The error for the files, which must be malformed at `file`:`line`.
fn malformed(users: &str, ratings: &str, file: &str, line: usize) -> String {
    let err = read(users, ratings, false).expect_err("a malformed file");
    assert_eq!(err.path(), Path::new(file));
    assert!(
        matches!(err.kind(), DataErrorKind::Malformed { line: l, .. } if *l == line),
        "{err}"
    );
    err.to_string()
}

#[test]
fn malformed_lines_are_errors_naming_file_and_line() {
    let cases: [(&str, &str, &str, usize, &str); 9] = [
        (
            "1|24|M|writer\n",
            RATINGS,
            "u.user",
            1,
            "4 |-separated field(s), expected 5",
        ),
        (
            "1|24|X|writer|1\n",
            RATINGS,
            "u.user",
            1,
            "gender \"X\" is not M or F",
        ),
        (
            "1|old|M|writer|1\n",
            RATINGS,
            "u.user",
            1,
            "age \"old\" is not a whole number",
        ),
        (
            "1|24|M||1\n",
            RATINGS,
            "u.user",
            1,
            "the occupation is empty",
        ),
        (
            "1|24|M|a|1\n\n1|30|F|b|2\n",
            RATINGS,
            "u.user",
            3,
            "user 1 is listed twice (first on line 1)",
        ),
        (
            USERS,
            "7\t50\t6\t1\n",
            "u.data",
            1,
            "rating 6 is outside 1..=5",
        ),
        (
            USERS,
            "7\t50\t4\n",
            "u.data",
            1,
            "3 tab-separated field(s), expected 4",
        ),
        (
            USERS,
            "7\t50\t4\t1\n8\t50\t4\t1\n",
            "u.data",
            2,
            "user 8 is not listed in u.user",
        ),
        (
            USERS,
            "7\t0\t4\t1\n",
            "u.data",
            1,
            "item id 0 is outside 1..=",
        ),
    ];
    for (users, ratings, file, line, problem) in cases {
        let message = malformed(users, ratings, file, line);
        assert!(
            message.starts_with(&format!("{file}:{line}: {problem}")),
            "{message}"
        );
    }
    let message = malformed(USERS, "7\t50\t4\t\u{0}\u{ff}\n", "u.data", 1);
    assert!(message.contains("timestamp"), "{message}");
    let err = MovieLens::from_readers(
        &b"7\t5\xff\t4\t1\n"[..],
        Path::new("u.data"),
        USERS.as_bytes(),
        Path::new("u.user"),
        false,
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .contains("u.data:1: not UTF-8 text (byte 4)"),
        "{err}"
    );
}

#[test]
fn skipping_malformed_lines_counts_them_and_keeps_the_rest() {
    let users = format!("{USERS}9|x|M|a|1\n");
    let ratings = format!("{RATINGS}9\t10\t4\t1\nbroken\n");
    let (data, skipped) = read(&users, &ratings, true).unwrap();
    assert_eq!(
        data.examples,
        read(USERS, RATINGS, false).unwrap().0.examples
    );
    // The bad user, the rating by that user, and the broken line.
    assert_eq!(skipped.count, 3);
    assert!(
        skipped
            .to_string()
            .contains("the first: u.user:4: age \"x\""),
        "{skipped}"
    );
}

#[test]
fn missing_files_are_named() {
    let dir = temp_dir("movielens");
    fs::write(dir.join("u.user"), USERS).unwrap();
    let err = MovieLens::load(&dir, false).unwrap_err();
    assert_eq!(err.path(), dir.join("u.data"));
    fs::write(dir.join("u.data"), RATINGS).unwrap();
    assert_eq!(MovieLens::load(&dir, false).unwrap().0.examples.len(), 4);
    // An explicit directory without the files is an error listing what is missing.
    let empty = temp_dir("movielens-empty");
    let err = MovieLens::locate_and_load(Some(&empty), false).unwrap_err();
    assert!(
        err.to_string().contains("u.data") && err.to_string().contains("movielens-100k"),
        "{err}"
    );
}

fn real_data() -> Option<PathBuf> {
    match find_dataset(
        movielens::NAME,
        None,
        movielens::ENV_VAR,
        &movielens::REQUIRED_FILES,
    ) {
        Ok(dir) => Some(dir),
        Err(e) => {
            println!(
                "skipped: MovieLens-100k is not here (not committed; see data/README.md):\n{e}"
            );
            None
        }
    }
}

#[test]
fn the_real_files_give_pythons_examples_and_split() {
    let Some(dir) = real_data() else { return };
    let (data, skipped) = MovieLens::load(&dir, false).unwrap();
    assert_eq!(skipped.count, 0);
    assert_eq!(data.examples.len(), 100_000);
    assert_eq!(data.field_sizes, [943, 1682, 7, 2, 21]);
    assert_eq!(data.table_size(), 2655);
    assert_eq!(
        data.examples.ids()[..10],
        [195, 1184, 2629, 2632, 2654, 185, 1244, 2628, 2633, 2640]
    );
    assert_eq!(
        data.examples.labels().iter().filter(|&&y| y == 1.0).count(),
        55_375
    );
    let split = data.split(0);
    assert_eq!((split.train.len(), split.test.len()), (80_000, 20_000));
    assert_eq!(
        split.train.ids()[..15],
        [681, 1008, 2626, 2632, 2648, 327, 1024, 2630, 2632, 2634, 181, 1053, 2628, 2632, 2648]
    );
    assert_eq!(split.train.labels()[..3], [0.0, 1.0, 1.0]);
    assert_eq!(
        split.test.ids()[..10],
        [177, 1073, 2627, 2632, 2647, 285, 1710, 2627, 2632, 2652]
    );
    let positives = |labels: &[f32]| labels.iter().filter(|&&y| y == 1.0).count();
    assert_eq!(
        (
            positives(split.train.labels()),
            positives(split.test.labels())
        ),
        (44_306, 11_069)
    );
}

#[test]
fn fuzz_findings_stay_fixed() {
    // Every input the `movielens` fuzz target (fuzz/) flagged, replayed through the same
    // checks (tests/fuzz_ctr/mod.rs) on stable, after a few inputs made here.
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for control in [0u8, 1] {
        for (users, ratings) in [
            (USERS, RATINGS),
            (USERS, "7\t1\n"),
            ("", RATINGS),
            ("1|2|M|a|b\n", ""),
        ] {
            inputs.push(
                [
                    &[control][..],
                    users.as_bytes(),
                    &[0xff],
                    ratings.as_bytes(),
                ]
                .concat(),
            );
        }
        inputs.push([&[control][..], USERS.as_bytes()].concat());
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz/movielens");
    if let Ok(entries) = fs::read_dir(&dir) {
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        inputs.extend(paths.iter().map(|p| fs::read(p).unwrap()));
    }
    for input in inputs {
        fuzz_ctr::check_movielens(&input);
    }
}
