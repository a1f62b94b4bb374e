//! Which screenplay model a film uses: the built-in ones embedded in benjamin (the adapters
//! on SmolLM2, the small GPT) or a folder made by `benjamin train screenplay`.

use std::path::Path;

use anyhow::{Context, Result};

use super::lm::{ModelBundle, CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use crate::film::Film;

/// The built-in models, trained by `benjamin train screenplay` (see models/README.md): the
/// adapters on SmolLM2 (the default) and the small GPT trained from scratch.
mod embedded {
    pub mod adapters {
        pub const CONFIG: &str = include_str!("../../models/screenplay-smollm2/config.json");
        pub const WEIGHTS: &[u8] =
            include_bytes!("../../models/screenplay-smollm2/model.safetensors");
    }
    pub mod gpt {
        pub const CONFIG: &str = include_str!("../../models/screenplay/config.json");
        pub const WEIGHTS: &[u8] = include_bytes!("../../models/screenplay/model.safetensors");
        pub const TOKENIZER: &str = include_str!("../../models/screenplay/tokenizer.json");
    }
}

/// The names `--screenplay-model` takes for the built-in models (any other value is a folder).
pub const BUILT_IN_MODELS: [&str; 2] = ["smollm2", "gpt"];

/// Which model a film's setting names: `None` or "smollm2" the built-in adapters (they score
/// best: see models/README.md), "gpt" the built-in GPT, anything else a folder made by
/// `benjamin train screenplay`.
enum ModelChoice<'a> {
    Adapters,
    Gpt,
    Folder(&'a Path),
}

fn choice(setting: Option<&Path>) -> ModelChoice<'_> {
    match setting {
        None => ModelChoice::Adapters,
        Some(p) if p.exists() => ModelChoice::Folder(p),
        Some(p) if p == Path::new("smollm2") => ModelChoice::Adapters,
        Some(p) if p == Path::new("gpt") => ModelChoice::Gpt,
        Some(p) => ModelChoice::Folder(p),
    }
}

/// Hash of the model a film uses, without loading it.
pub fn model_hash(film: &Film) -> Result<String> {
    let read = |dir: &Path, n: &str| {
        std::fs::read(dir.join(n)).with_context(|| format!("cannot read {}", dir.join(n).display()))
    };
    match choice(film.settings.screenplay_model.as_deref()) {
        ModelChoice::Adapters => super::lm::bundle_hash(
            embedded::adapters::CONFIG,
            embedded::adapters::WEIGHTS,
            None,
        ),
        ModelChoice::Gpt => Ok(super::lm::model_hash(
            embedded::gpt::WEIGHTS,
            embedded::gpt::TOKENIZER.as_bytes(),
        )),
        ModelChoice::Folder(dir) => {
            let config = String::from_utf8_lossy(&read(dir, CONFIG_FILE)?).into_owned();
            super::lm::bundle_hash(
                &config,
                &read(dir, WEIGHTS_FILE)?,
                read(dir, TOKENIZER_FILE).ok().as_deref(),
            )
            .with_context(|| format!("{} is not a screenplay model", dir.display()))
        }
    }
}

/// The files of a built-in model: config, weights, tokenizer (the adapters take their
/// base's), and what to call it in errors.
pub struct BuiltIn {
    pub config: &'static str,
    pub weights: &'static [u8],
    pub tokenizer: Option<&'static str>,
    pub name: &'static str,
}

/// The built-in model a film's setting names, or the model folder it names instead.
pub fn built_in(setting: Option<&Path>) -> std::result::Result<BuiltIn, &Path> {
    match choice(setting) {
        ModelChoice::Adapters => Ok(BuiltIn {
            config: embedded::adapters::CONFIG,
            weights: embedded::adapters::WEIGHTS,
            tokenizer: None,
            name: "the built-in screenplay adapters",
        }),
        ModelChoice::Gpt => Ok(BuiltIn {
            config: embedded::gpt::CONFIG,
            weights: embedded::gpt::WEIGHTS,
            tokenizer: Some(embedded::gpt::TOKENIZER),
            name: "the built-in screenplay GPT",
        }),
        ModelChoice::Folder(dir) => Err(dir),
    }
}

/// The model a film uses (see [`choice`]).
pub fn load_model(setting: Option<&Path>) -> Result<ModelBundle> {
    load_model_with(setting, None)
}

/// The model a film uses, with `weights` in place of a built-in model's own (its genre's
/// fine-tuned ones).
pub fn load_model_with(setting: Option<&Path>, weights: Option<&[u8]>) -> Result<ModelBundle> {
    let device = crate::nn::device();
    match built_in(setting) {
        Ok(b) => ModelBundle::from_parts(
            b.config,
            weights.unwrap_or(b.weights),
            b.tokenizer,
            None,
            b.name,
            &device,
        ),
        Err(dir) => ModelBundle::load_dir(dir, &device),
    }
}
