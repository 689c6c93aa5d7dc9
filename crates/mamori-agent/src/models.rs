//! Per-image models: `mamori learn` writes `<dir>/<image>.model`, the agent loads the one for each
//! container's image the first time it sees the container.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mamori_detect::classes::ClassTable;

use super::monitor::LoadedModel;
use mamori_core::envelope as modelfile;
use mamori_pipeline::model::TrainedModel;

/// The file name an image's model is stored under: the image name with characters that are not
/// safe in file names (`/`, `:`, `@`) replaced by `_`.
pub fn model_file(dir: &Path, image: &str) -> PathBuf {
    let safe: String = image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}.model"))
}

/// Reads and checks a model file, ready to score.
pub fn load(path: &Path) -> Result<LoadedModel> {
    let model: TrainedModel = modelfile::load(path, modelfile::ModelKind::Syscall)?;
    let table = ClassTable::new(model.classes.clone())
        .with_context(|| format!("{}: stored class table", path.display()))?;
    let threshold = model.threshold.as_ref().map(|t| t.value).with_context(|| {
        format!(
            "{} has no threshold: train it with calibration (the default) or --threshold",
            path.display()
        )
    })?;
    Ok(LoadedModel {
        path: path.display().to_string(),
        model,
        table,
        threshold,
    })
}

/// How long a missing model is remembered as missing before the directory is looked at again
/// (so a model learned while the agent runs is picked up).
const RETRY_MISSING: Duration = Duration::from_secs(10);

/// Loads models by image, caching them.
pub struct ModelStore {
    dir: PathBuf,
    loaded: HashMap<String, Arc<LoadedModel>>,
    missing: HashMap<String, Instant>,
}

impl ModelStore {
    /// A store over `dir`.
    pub fn new(dir: PathBuf) -> Self {
        ModelStore {
            dir,
            loaded: HashMap::new(),
            missing: HashMap::new(),
        }
    }

    /// The model for `image`, if one was learned; a broken file is reported once and treated as
    /// missing.
    pub fn for_image(&mut self, image: &str) -> Option<Arc<LoadedModel>> {
        if let Some(m) = self.loaded.get(image) {
            return Some(Arc::clone(m));
        }
        if self
            .missing
            .get(image)
            .is_some_and(|t| t.elapsed() < RETRY_MISSING)
        {
            return None;
        }
        let path = model_file(&self.dir, image);
        if !path.exists() {
            if !self.missing.contains_key(image) {
                eprintln!(
                    "mamori: no model for image {image} ({} missing): its containers are counted, not scored; run `mamori learn`",
                    path.display()
                );
            }
            self.missing.insert(image.to_string(), Instant::now());
            return None;
        }
        match load(&path) {
            Ok(m) => {
                eprintln!(
                    "mamori: image {image}: {} model {} (threshold {:.4})",
                    m.model.kind,
                    path.display(),
                    m.threshold
                );
                let m = Arc::new(m);
                self.loaded.insert(image.to_string(), Arc::clone(&m));
                self.missing.remove(image);
                Some(m)
            }
            Err(e) => {
                eprintln!("mamori: image {image}: {e:#}");
                self.missing.insert(image.to_string(), Instant::now());
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_become_safe_file_names() {
        let d = Path::new("/m");
        assert_eq!(
            model_file(d, "mamori-bb"),
            PathBuf::from("/m/mamori-bb.model")
        );
        assert_eq!(
            model_file(d, "ghcr.io/x/motion:4.5"),
            PathBuf::from("/m/ghcr.io_x_motion_4.5.model")
        );
        assert_eq!(model_file(d, "../etc"), PathBuf::from("/m/.._etc.model"));
    }
}
