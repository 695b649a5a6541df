//! A run's settings, stored in its checkpoints so that a resume can check them.
//!
//! Resuming with another seed, batch size, learning rate or data subset would silently
//! give a different run than the one the checkpoint belongs to. Each checkpoint stores
//! the settings that define the run (`settings.<flag>` in its metadata); a resume with
//! a different value is refused, naming the flag, unless `--allow-changed-settings` says
//! the change is intended. Settings that do not change the result (threads, paths) are
//! not stored.

use std::collections::BTreeMap;

use super::error::TrainError;

/// Metadata-key prefix of the stored settings.
pub const SETTINGS_PREFIX: &str = "settings.";

/// The flags (without `--`) and values that define a run, in the order given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSettings(pub Vec<(String, String)>);

impl RunSettings {
    /// Add a setting (builder style); `value` is stored with its `Display` form.
    pub fn with(mut self, flag: &str, value: impl std::fmt::Display) -> RunSettings {
        self.0.push((flag.to_string(), value.to_string()));
        self
    }

    /// Add a setting only when `condition` holds (a flag at its historical default is not
    /// stored, so older checkpoints keep resuming).
    pub fn with_if(
        self,
        condition: bool,
        flag: &str,
        value: impl std::fmt::Display,
    ) -> RunSettings {
        if condition {
            self.with(flag, value)
        } else {
            self
        }
    }

    /// The metadata entries a checkpoint stores.
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(k, v)| (format!("{SETTINGS_PREFIX}{k}"), v.clone()))
            .collect()
    }

    /// Compare with the settings stored in a checkpoint's metadata.
    ///
    /// # Errors
    /// The first setting whose value differs (or that the checkpoint lacks), naming the
    /// flag, both values and how to resume anyway, unless `allow_changes`.
    pub fn check_against(
        &self,
        stored: &BTreeMap<String, String>,
        allow_changes: bool,
    ) -> Result<(), TrainError> {
        if allow_changes {
            return Ok(());
        }
        for (flag, value) in &self.0 {
            match stored.get(&format!("{SETTINGS_PREFIX}{flag}")) {
                Some(old) if old == value => {}
                Some(old) => {
                    return Err(TrainError::Settings(format!(
                        "--{flag} is {value}, but the checkpoint was made with --{flag} {old}; \
                         resuming would not continue the same run (pass --allow-changed-settings to \
                         resume anyway)"
                    )));
                }
                None => {
                    return Err(TrainError::Settings(format!(
                        "the checkpoint does not record --{flag} (made by an older version?); pass \
                         --allow-changed-settings to resume anyway"
                    )));
                }
            }
        }
        Ok(())
    }
}
