//! The pretrained-base path on a tiny llama-shaped GGUF made here (byte-level tokens, two
//! layers): damaged files are refused by name, adapters learn, the cached sampler agrees with
//! the full forward pass (also after rewinding), and every cue of a draft is in the cast.

use std::path::{Path, PathBuf};
use std::time::Duration;

use benjamin::film::Genre;
use benjamin::progress::Progress;
use benjamin::screenplay::lm::base::{self, Base};
use benjamin::screenplay::lm::draft::write_draft;
use benjamin::screenplay::lm::sample::{Constraints, DraftRequest, SamplingOptions};
use benjamin::screenplay::lm::train::{self, Document, TrainOptions};
use benjamin::screenplay::lm::{LanguageModel, ModelBundle, ModelConfig, Stepper};
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};

const TINY: &str = "Title: Wet Streets\nAuthor: benjamin corpus\n\nINT. BAR - NIGHT\n\nRain on the glass. Sam waits.\n\nSAM\nYou came back.\n\nVERA\nI never left.\n\n\
EXT. PIER - DAWN\n\nGulls over the water. Vera walks alone.\n\nVERA\nIt is over now.\n\nSAM\nNot yet.\n\n";

/// A llama GGUF with byte-level tokens: 32 wide, 2 layers, 4 query and 2 key/value heads.
fn write_tiny_gguf(path: &Path, arch: &str) {
    use gguf_file::Value;
    let dev = Device::Cpu;
    let mut alphabet: Vec<char> = tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet()
        .into_iter()
        .collect();
    alphabet.sort();
    let mut tokens = vec!["<|endoftext|>".to_string()];
    tokens.extend(alphabet.iter().map(|c| c.to_string()));
    let types: Vec<Value> = (0..tokens.len())
        .map(|i| Value::I32(if i == 0 { 3 } else { 1 }))
        .collect();
    let (vocab, width, ffn, layers) = (tokens.len(), 32usize, 64usize, 2usize);
    let u = |v: usize| Value::U32(v as u32);
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String(arch.into())),
        ("llama.block_count", u(layers)),
        ("llama.embedding_length", u(width)),
        ("llama.feed_forward_length", u(ffn)),
        ("llama.attention.head_count", u(4)),
        ("llama.attention.head_count_kv", u(2)),
        ("llama.rope.freq_base", Value::F32(10_000.0)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        (
            "tokenizer.ggml.tokens",
            Value::Array(tokens.iter().map(|t| Value::String(t.clone())).collect()),
        ),
        ("tokenizer.ggml.merges", Value::Array(Vec::new())),
        ("tokenizer.ggml.token_type", Value::Array(types)),
    ];
    let randn = |shape: (usize, usize), dtype: GgmlDType| {
        let t = (Tensor::randn(0f32, 1.0, shape, &dev).unwrap() * (1.0 / (shape.1 as f64).sqrt()))
            .unwrap();
        QTensor::quantize(&t, dtype).unwrap()
    };
    let ones = |n: usize| {
        QTensor::quantize(
            &Tensor::ones(n, candle_core::DType::F32, &dev).unwrap(),
            GgmlDType::F32,
        )
        .unwrap()
    };
    let mut tensors: Vec<(String, QTensor)> = vec![
        (
            "token_embd.weight".into(),
            randn((vocab, width), GgmlDType::F32),
        ),
        ("output_norm.weight".into(), ones(width)),
    ];
    for i in 0..layers {
        let p = |n: &str| format!("blk.{i}.{n}.weight");
        // 4-bit blocks with offsets, as SmolLM2 ships, for one projection of each kind.
        tensors.push((p("attn_q"), randn((width, width), GgmlDType::Q4_1)));
        tensors.push((p("attn_k"), randn((16, width), GgmlDType::F32)));
        tensors.push((p("attn_v"), randn((16, width), GgmlDType::F32)));
        tensors.push((p("attn_output"), randn((width, width), GgmlDType::F32)));
        tensors.push((p("ffn_gate"), randn((ffn, width), GgmlDType::Q4_1)));
        tensors.push((p("ffn_up"), randn((ffn, width), GgmlDType::F32)));
        tensors.push((p("ffn_down"), randn((width, ffn), GgmlDType::Q8_0)));
        tensors.push((p("attn_norm"), ones(width)));
        tensors.push((p("ffn_norm"), ones(width)));
    }
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &md, &ts).unwrap();
}

fn tiny_base(dir: &Path) -> (PathBuf, Base) {
    let path = dir.join("tiny.gguf");
    write_tiny_gguf(&path, "llama");
    let base = Base::open(&path).unwrap();
    (path, base)
}

fn options(base: &Base, steps: usize) -> TrainOptions {
    let mut o = TrainOptions::new(ModelConfig::on_base(base, 8, 32), Duration::from_secs(600));
    o.max_steps = Some(steps);
    o.batch = 4;
    o.warmup = 5;
    o.eval_every = steps;
    o.eval_batches = 2;
    o.max_lr = 3e-2;
    o.min_lr = 3e-3;
    o
}

fn docs() -> Vec<Document> {
    (0..4)
        .map(|_| Document {
            genre: Some(Genre::Noir),
            text: TINY.repeat(3),
        })
        .collect()
}

#[test]
fn truncated_and_foreign_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = tiny_base(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let err = format!(
        "{:#}",
        Base::open(&cut).err().expect("a truncated file is refused")
    );
    assert!(
        err.contains("cut.gguf") && err.contains("truncated"),
        "{err}"
    );
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"not a model at all").unwrap();
    let err = format!("{:#}", Base::open(&junk).err().expect("junk is refused"));
    assert!(err.contains("junk.gguf"), "{err}");
    let gpt2 = dir.path().join("gpt2.gguf");
    write_tiny_gguf(&gpt2, "gpt2");
    let err = format!(
        "{:#}",
        Base::open(&gpt2)
            .err()
            .expect("another architecture is refused")
    );
    assert!(
        err.contains("gpt2.gguf") && err.contains("architecture"),
        "{err}"
    );
    let missing = base::locate(Some(&dir.path().join("nowhere")))
        .err()
        .unwrap();
    assert!(format!("{missing:#}").contains("nowhere"));
}

/// The default model is the adapters, so `write` needs the base; a base named by
/// BENJAMIN_BASE that is not there is an error naming it, never a quiet fallback.
#[test]
fn the_default_model_reads_the_base_benjamin_base_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_benjamin"))
        .args(["write", "--genre", "noir", "--quiet"])
        .env("BENJAMIN_BASE", dir.path().join("typo.gguf"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("typo.gguf") && err.contains("BENJAMIN_BASE"),
        "{err}"
    );
}

#[test]
fn the_base_tokenizer_round_trips_and_adds_benjamins_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (_, base) = tiny_base(dir.path());
    let tok = base.tokenizer().unwrap();
    assert_eq!(tok.vocab_size(), base.shape.vocab + 4);
    let text = "INT. DOCKS - NIGHT\n\nMARLOWE\nIt's 3:15 -- café.\n";
    assert_eq!(tok.decode(&tok.encode(text).unwrap()).unwrap(), text);
    let ids = tok.encode("<|noir|>INT.").unwrap();
    assert_eq!(
        ids[0] as usize, base.shape.vocab,
        "the genre token follows the base's vocabulary"
    );
}

#[test]
fn adapters_learn_and_the_cached_sampler_matches_the_full_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (path, base) = tiny_base(dir.path());
    let tok = base.tokenizer().unwrap();
    let out = dir.path().join("adapters");
    let opts = options(&base, 200);
    let report =
        train::train(&docs(), &tok, &opts, &out, &Progress::hidden(), Some(&base)).unwrap();
    let (split, _) = train::split(&docs(), &tok, true).unwrap();
    let fresh = LanguageModel::on_base(&opts.config, &base, &Device::Cpu).unwrap();
    let before = train::evaluate(&fresh, &split.val, &opts).unwrap();
    assert!(
        report.best_val_loss < before - 0.5,
        "validation loss {before} -> {}",
        report.best_val_loss
    );
    assert!(
        !out.join("tokenizer.json").exists(),
        "adapters take their base's tokenizer"
    );

    // The adapters load on the base, and sampling with the cache sees what a full pass sees.
    std::env::set_var("BENJAMIN_BASE", &path);
    let bundle = ModelBundle::load_dir(&out, &Device::Cpu).unwrap();
    let ids: Vec<u32> = tok.encode("<|noir|>INT. BAR - NIGHT\n\nSAM\nYou").unwrap();
    let full = bundle
        .model
        .forward(
            &Tensor::new(ids.as_slice(), &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap(),
        )
        .unwrap();
    let last = full
        .get(0)
        .unwrap()
        .get(ids.len() - 1)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let mut stepper = Stepper::new(&bundle.model);
    stepper.push(&ids[..5]);
    stepper.next_logits().unwrap();
    stepper.push(&[ids[5], 7, 9]);
    stepper.next_logits().unwrap();
    // Rewound past the two stray tokens: the next logits are those after the sixth token;
    // then fed the rest.
    stepper.truncate(6).unwrap();
    let sixth = full
        .get(0)
        .unwrap()
        .get(5)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let again = stepper.next_logits().unwrap();
    let diff = sixth
        .iter()
        .zip(&again)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-3, "logits after a rewind differ by {diff}");
    stepper.push(&ids[6..]);
    let cached = stepper.next_logits().unwrap();
    let diff = last
        .iter()
        .zip(&cached)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-3, "cached and full logits differ by {diff}");

    // A draft names its cast on the title page and repeats for a seed. (That its cues stay
    // in the cast is tested with a small GPT, which writes cues after a few steps.)
    let cast: Vec<String> = ["ROSA", "DUKE", "IRIS"].map(String::from).to_vec();
    let constraints = Constraints {
        title: "Wet Streets".into(),
        line: None,
        prop: None,
        cast: cast.clone(),
    };
    let req = DraftRequest {
        genre: Genre::Noir,
        seed: 3,
        target_seconds: 20.0,
        constraints: constraints.clone(),
        sampling: SamplingOptions::default(),
        max_tokens: 1200,
    };
    let draft = write_draft(&bundle, &req, None, |_| {}).unwrap();
    assert!(draft.contains("Cast: ROSA, DUKE, IRIS"), "{draft}");
    assert_eq!(draft, write_draft(&bundle, &req, None, |_| {}).unwrap());
}
