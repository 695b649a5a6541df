//! MovieLens-100k (GroupLens) as click-through data: every rating is an example, and a
//! rating of 4 or 5 is a "click".
//!
//! # Files
//!
//! ```text
//! u.data   user \t item \t rating \t timestamp      196\t242\t3\t881250949       (100,000 lines)
//! u.user   user|age|gender|occupation|zip code     1|24|M|technician|85711       (943 lines)
//! ```
//!
//! # Examples
//!
//! Five fields, each a row of one table laid out by offsets (no hashing, no two
//! features share a row):
//!
//! ```text
//! user        the users of u.user, by increasing id            943 rows
//! item        the items rated in u.data, by increasing id      1682 rows
//! age         under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+ 7 rows (MovieLens-1M's buckets)
//! gender      M, F                                             2 rows
//! occupation  the occupations of u.user, in byte order         21 rows
//! ```
//!
//! so user `u` (the `u`-th smallest id) is row `u`, item `i` is row `943 + i`, and so
//! on; [`MovieLens::field_sizes`] gives the sizes. The label is 1 for a rating of 4 or
//! more (55,375 of the 100,000 ratings), else 0. [`MovieLens::split`] makes the seeded
//! 80/20 split of [`CtrExamples::split_80_20`].
//!
//! # Errors
//!
//! A line that does not parse (the wrong number of fields, a rating outside 1..=5, a
//! rating by a user u.user does not list, a user listed twice) stops the read with a
//! [`DataError`] naming the file and the line, unless `skip_malformed` asks to skip
//! such lines and count them ([`Skipped`]). Blank lines are passed over.
//!
//! F. M. Harper and J. A. Konstan, "The MovieLens Datasets: History and Context", ACM
//! TiiS 5(4):19, 2015. The files may not be redistributed; see `data/README.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::ctr::{CtrDataset, CtrExamples, Skipped};
use super::{locate, DataError, DataErrorKind};

/// The data set's directory name (`data/movielens-100k`, `../shared/data/movielens-100k`).
pub const NAME: &str = "movielens-100k";
/// The environment variable naming its directory.
pub const ENV_VAR: &str = "AGDLAB_MOVIELENS";
/// The files it needs.
pub const REQUIRED_FILES: [&str; 2] = ["u.data", "u.user"];
/// The fields of an example, in order.
pub const FIELD_NAMES: [&str; 5] = ["user", "item", "age", "gender", "occupation"];
/// The lower ends of the age buckets after the first ("under 18").
const AGE_BUCKETS: [u32; 6] = [18, 25, 35, 45, 50, 56];

/// The ratings of MovieLens-100k as click-through examples (see the [module
/// documentation](self)).
#[derive(Clone, Debug)]
pub struct MovieLens {
    /// One example per rating, in the order of u.data.
    pub examples: CtrExamples,
    /// Rows per field: users, items, 7 age buckets, 2 genders, occupations.
    pub field_sizes: [usize; 5],
}

/// One line of u.user.
struct User {
    age_bucket: usize,
    female: bool,
    occupation: String,
}

/// One line of u.data.
struct Rating {
    user: u32,
    item: u32,
    positive: bool,
}

impl MovieLens {
    /// Read `u.data` and `u.user` from `dir`.
    ///
    /// # Errors
    /// A file that cannot be read, or a malformed line (unless `skip_malformed`), named
    /// with its file and line number.
    pub fn load(dir: &Path, skip_malformed: bool) -> Result<(MovieLens, Skipped), DataError> {
        let open = |name: &str| -> Result<(BufReader<File>, PathBuf), DataError> {
            let path = dir.join(name);
            match File::open(&path) {
                Ok(file) => Ok((BufReader::new(file), path)),
                Err(e) => Err(DataError::new(path, DataErrorKind::Io(e))),
            }
        };
        let (ratings, ratings_path) = open("u.data")?;
        let (users, users_path) = open("u.user")?;
        MovieLens::from_readers(ratings, &ratings_path, users, &users_path, skip_malformed)
    }

    /// Find the data set ([`find_dataset`](locate::find_dataset): the flag, then
    /// `$AGDLAB_MOVIELENS`, `$AGDLAB_DATA/movielens-100k`, `data/movielens-100k`,
    /// `../shared/data/movielens-100k`) and read it.
    ///
    /// # Errors
    /// Not found (the message lists every place looked), or as [`MovieLens::load`].
    pub fn locate_and_load(
        flag: Option<&Path>,
        skip_malformed: bool,
    ) -> Result<(MovieLens, Skipped), DataError> {
        let dir = locate::find_dataset(NAME, flag, ENV_VAR, &REQUIRED_FILES)?;
        MovieLens::load(&dir, skip_malformed)
    }

    /// Read the two files from readers; the paths are the names errors give.
    ///
    /// # Errors
    /// As [`MovieLens::load`].
    pub fn from_readers(
        ratings: impl BufRead,
        ratings_path: &Path,
        users: impl BufRead,
        users_path: &Path,
        skip_malformed: bool,
    ) -> Result<(MovieLens, Skipped), DataError> {
        let mut skipped = Skipped::default();
        let mut users_by_id: BTreeMap<u32, (usize, User)> = BTreeMap::new();
        for_each_line(
            users,
            users_path,
            skip_malformed,
            &mut skipped,
            |number, text| {
                let (id, user) = parse_user(text)?;
                if let Some((first, _)) = users_by_id.get(&id) {
                    return Err(format!("user {id} is listed twice (first on line {first})"));
                }
                users_by_id.insert(id, (number, user));
                Ok(())
            },
        )?;
        let mut ratings_in_order = Vec::new();
        for_each_line(
            ratings,
            ratings_path,
            skip_malformed,
            &mut skipped,
            |_, text| {
                let rating = parse_rating(text)?;
                if !users_by_id.contains_key(&rating.user) {
                    return Err(format!(
                        "user {} is not listed in {}",
                        rating.user,
                        users_path.display()
                    ));
                }
                ratings_in_order.push(rating);
                Ok(())
            },
        )?;

        // Offsets of each field's block of rows.
        let user_row: HashMap<u32, usize> = users_by_id
            .keys()
            .enumerate()
            .map(|(row, &id)| (id, row))
            .collect();
        let items: BTreeSet<u32> = ratings_in_order.iter().map(|r| r.item).collect();
        let item_row: HashMap<u32, usize> = items
            .iter()
            .enumerate()
            .map(|(row, &id)| (id, row))
            .collect();
        let occupations: BTreeSet<&str> = users_by_id
            .values()
            .map(|(_, u)| u.occupation.as_str())
            .collect();
        let occupation_row: HashMap<&str, usize> = occupations
            .iter()
            .enumerate()
            .map(|(row, &o)| (o, row))
            .collect();
        let field_sizes = [
            user_row.len(),
            item_row.len(),
            AGE_BUCKETS.len() + 1,
            2,
            occupation_row.len(),
        ];
        let mut offsets = [0usize; 5];
        for f in 1..5 {
            offsets[f] = offsets[f - 1] + field_sizes[f - 1];
        }

        let mut examples = CtrExamples::empty(FIELD_NAMES.len(), false);
        for rating in &ratings_in_order {
            let (_, user) = &users_by_id[&rating.user];
            let rows = [
                user_row[&rating.user],
                item_row[&rating.item],
                user.age_bucket,
                user.female as usize,
                occupation_row[user.occupation.as_str()],
            ];
            let ids: Vec<u32> = rows
                .iter()
                .zip(offsets)
                .map(|(&row, offset)| (row + offset) as u32)
                .collect();
            examples.push(&ids, None, if rating.positive { 1.0 } else { 0.0 });
        }
        Ok((
            MovieLens {
                examples,
                field_sizes,
            },
            skipped,
        ))
    }

    /// Rows of the table: the sum of [`MovieLens::field_sizes`].
    pub fn table_size(&self) -> usize {
        self.field_sizes.iter().sum()
    }

    /// The seeded 80/20 split of [`CtrExamples::split_80_20`].
    pub fn split(&self, seed: u64) -> CtrDataset {
        let (train, test) = self.examples.split_80_20(seed);
        CtrDataset {
            train,
            test,
            table_size: self.table_size(),
            field_names: FIELD_NAMES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Run `parse` on every non-blank line (numbered from 1, without its line end); a
/// problem it reports becomes a [`DataErrorKind::Malformed`] error, or a skipped line.
fn for_each_line(
    mut reader: impl BufRead,
    path: &Path,
    skip_malformed: bool,
    skipped: &mut Skipped,
    mut parse: impl FnMut(usize, &str) -> Result<(), String>,
) -> Result<(), DataError> {
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .map_err(|e| DataError::new(path, DataErrorKind::Io(e)))?
            == 0
        {
            return Ok(());
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() {
            continue;
        }
        let result = match std::str::from_utf8(text) {
            Ok(text) => parse(number, text),
            Err(e) => Err(format!("not UTF-8 text (byte {})", e.valid_up_to() + 1)),
        };
        if let Err(problem) = result {
            let error = DataError::new(
                path,
                DataErrorKind::Malformed {
                    line: number,
                    problem,
                },
            );
            if !skip_malformed {
                return Err(error);
            }
            skipped.add(error);
        }
    }
    unreachable!("the loop returns at the end of the input")
}

/// `field` as a whole number in `range`, or what is wrong with it.
fn number(field: &str, what: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, String> {
    match field.trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        Ok(n) => Err(format!(
            "{what} {n} is outside {}..={}",
            range.start(),
            range.end()
        )),
        Err(_) => Err(format!("{what} {field:?} is not a whole number")),
    }
}

/// `id|age|gender|occupation|zip code`.
fn parse_user(text: &str) -> Result<(u32, User), String> {
    let fields: Vec<&str> = text.split('|').collect();
    let [id, age, gender, occupation, _zip] = fields[..] else {
        return Err(format!(
            "{} |-separated field(s), expected 5: user|age|gender|occupation|zip",
            fields.len()
        ));
    };
    let id = number(id, "user id", 1..=u32::MAX as u64)? as u32;
    let age = number(age, "age", 0..=200)? as u32;
    let female = match gender.trim() {
        "M" => false,
        "F" => true,
        other => return Err(format!("gender {other:?} is not M or F")),
    };
    let occupation = occupation.trim();
    if occupation.is_empty() {
        return Err("the occupation is empty".into());
    }
    let age_bucket = AGE_BUCKETS.iter().take_while(|&&low| age >= low).count();
    Ok((
        id,
        User {
            age_bucket,
            female,
            occupation: occupation.to_string(),
        },
    ))
}

/// `user \t item \t rating \t timestamp`.
fn parse_rating(text: &str) -> Result<Rating, String> {
    let fields: Vec<&str> = text.split('\t').collect();
    let [user, item, rating, timestamp] = fields[..] else {
        return Err(format!(
            "{} tab-separated field(s), expected 4: user, item, rating, timestamp",
            fields.len()
        ));
    };
    let user = number(user, "user id", 1..=u32::MAX as u64)? as u32;
    let item = number(item, "item id", 1..=u32::MAX as u64)? as u32;
    let rating = number(rating, "rating", 1..=5)?;
    number(timestamp, "timestamp", 0..=u64::MAX)?;
    Ok(Rating {
        user,
        item,
        positive: rating >= 4,
    })
}
