//! The screenplay language model on a tiny text: both architectures learn it, a resumed run
//! takes the very same steps, sampling is deterministic for a seed, and the constraints end up
//! in a repaired screenplay.

mod common;

use std::time::Duration;

use benjamin::film::Genre;
use benjamin::nn::AdamW;
use benjamin::progress::Progress;
use benjamin::screenplay::fountain::Element;
use benjamin::screenplay::lm::draft::write_draft;
use benjamin::screenplay::lm::sample::{Constraints, DraftRequest, SamplingOptions};
use benjamin::screenplay::lm::train::{
    self, evaluate, split, train_step, Document, TrainOptions, TrainState,
};
use benjamin::screenplay::lm::{
    Arch, LanguageModel, ModelBundle, ModelConfig, ScreenplayTokenizer,
};
use benjamin::screenplay::stage::repair;
use candle_core::Device;

const TINY: &str = "INT. BAR - NIGHT\n\nRain on the glass. Sam waits.\n\nSAM\nYou came back.\n\nVERA\nI never left.\n\n\
EXT. PIER - DAWN\n\nGulls over the water. Vera walks alone.\n\nVERA\nIt is over now.\n\nSAM\nNot yet.\n\n";

fn docs() -> Vec<Document> {
    (0..6)
        .map(|_| Document {
            genre: Some(Genre::Noir),
            text: TINY.repeat(4),
        })
        .collect()
}

fn tiny(arch: Arch, vocab: usize) -> ModelConfig {
    ModelConfig {
        arch,
        vocab,
        context: 32,
        layers: 1,
        heads: 2,
        width: 32,
        hidden: 48,
        adapters: None,
    }
}

fn options(config: ModelConfig, steps: usize) -> TrainOptions {
    let mut o = TrainOptions::new(config, Duration::from_secs(600));
    o.max_steps = Some(steps);
    o.batch = 8;
    o.warmup = 10;
    o.eval_every = steps;
    o.eval_batches = 2;
    o.max_lr = 1e-2;
    o.min_lr = 1e-3;
    o
}

fn tokenizer() -> ScreenplayTokenizer {
    ScreenplayTokenizer::train(&[TINY.repeat(4)], 300).unwrap()
}

#[test]
fn both_architectures_overfit_a_tiny_text() {
    let tok = tokenizer();
    let (data, _) = split(&docs(), &tok, false).unwrap();
    for arch in [Arch::Gpt, Arch::Lstm] {
        let opts = options(tiny(arch, tok.vocab_size()), 150);
        let model = LanguageModel::new(&opts.config, &Device::Cpu).unwrap();
        let mut opt = AdamW::new(&model.varmap, 0.0).unwrap();
        let before = evaluate(&model, &data.train, &opts).unwrap();
        for _ in 0..150 {
            train_step(&model, &mut opt, &data, &opts, 150).unwrap();
        }
        let after = evaluate(&model, &data.train, &opts).unwrap();
        assert!(
            after < before * 0.5,
            "{arch:?}: loss {before:.3} -> {after:.3}"
        );
    }
}

#[test]
fn a_resumed_checkpoint_takes_the_same_next_steps() {
    let tok = tokenizer();
    let (data, _) = split(&docs(), &tok, false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for arch in [Arch::Gpt, Arch::Lstm] {
        let opts = options(tiny(arch, tok.vocab_size()), 40);
        let model = LanguageModel::new(&opts.config, &Device::Cpu).unwrap();
        let mut opt = AdamW::new(&model.varmap, 0.1).unwrap();
        for _ in 0..10 {
            train_step(&model, &mut opt, &data, &opts, 40).unwrap();
        }
        let ckpt = dir.path().join(format!("{arch:?}"));
        train::save_checkpoint(
            &ckpt,
            &model,
            &opt,
            &TrainState {
                step: opt.step,
                ..Default::default()
            },
            &opts,
        )
        .unwrap();
        let straight: Vec<f32> = (0..5)
            .map(|_| train_step(&model, &mut opt, &data, &opts, 40).unwrap())
            .collect();

        let resumed = LanguageModel::new(&opts.config, &Device::Cpu).unwrap();
        let mut opt2 = AdamW::new(&resumed.varmap, 0.1).unwrap();
        let state = train::load_checkpoint(&ckpt, &resumed, &mut opt2)
            .unwrap()
            .unwrap();
        assert_eq!(state.step, 10);
        let again: Vec<f32> = (0..5)
            .map(|_| train_step(&resumed, &mut opt2, &data, &opts, 40).unwrap())
            .collect();
        assert_eq!(straight, again, "{arch:?}");
    }
}

/// A tiny GPT trained on TINY, saved and loaded as a bundle like the real one.
fn trained_bundle() -> ModelBundle {
    let tok = tokenizer();
    let dir = tempfile::tempdir().unwrap();
    let opts = options(tiny(Arch::Gpt, tok.vocab_size()), 250);
    let report = train::train(&docs(), &tok, &opts, dir.path(), &Progress::hidden(), None).unwrap();
    assert_eq!(report.steps, 250);
    ModelBundle::load_dir(dir.path(), &Device::Cpu).unwrap()
}

fn request(seed: u64) -> DraftRequest {
    DraftRequest {
        genre: Genre::Noir,
        seed,
        target_seconds: 30.0,
        constraints: Constraints {
            title: "Wet Streets".into(),
            line: Some("Where were you at midnight?".into()),
            prop: Some("brass key".into()),
            cast: Vec::new(),
        },
        sampling: SamplingOptions::default(),
        max_tokens: 1500,
    }
}

#[test]
fn seeded_drafts_repeat_and_keep_the_constraints() {
    let bundle = trained_bundle();
    let a = write_draft(&bundle, &request(5), None, |_| {}).unwrap();
    let b = write_draft(&bundle, &request(5), None, |_| {}).unwrap();
    assert_eq!(a, b, "same seed, same draft");
    let c = write_draft(&bundle, &request(6), None, |_| {}).unwrap();
    assert_ne!(a, c, "another seed, another draft");

    let req = request(5);
    let s = repair(&a, &req.constraints).unwrap();
    assert_eq!(s.title, "Wet Streets");
    assert!(a.starts_with("Title: Wet Streets\n"));
    let spoken = s.scenes.iter().flat_map(|sc| &sc.elements).any(
        |e| matches!(e, Element::Dialogue(d) if d.text.contains("Where were you at midnight?")),
    );
    let shown = s
        .scenes
        .iter()
        .flat_map(|sc| &sc.elements)
        .any(|e| matches!(e, Element::Action { text } if text.contains("brass key")));
    assert!(spoken && shown, "constraints missing from:\n{a}");
    assert!(s
        .scenes
        .iter()
        .all(|sc| !sc.heading.place.is_empty() && !sc.elements.is_empty()));

    // With a cast, the model's SAM and VERA become cast members while it writes, and the
    // required line goes to one of them.
    let cast: Vec<String> = ["ROSA", "DUKE"].map(String::from).to_vec();
    let mut req = request(5);
    req.constraints.cast = cast.clone();
    let draft = write_draft(&bundle, &req, None, |_| {}).unwrap();
    let s = repair(&draft, &req.constraints).unwrap();
    assert!(!s.characters.is_empty(), "{draft}");
    assert!(
        s.characters.iter().all(|c| cast.contains(c)),
        "{:?} outside the cast in:\n{draft}",
        s.characters
    );
    assert!(draft.contains("Where were you at midnight?"), "{draft}");
}

#[test]
fn drafts_that_come_in_under_their_estimate_buy_more_drafts_within_the_deadline() {
    use benjamin::screenplay::drafts::{write_drafts, DraftPlan, MOST_DRAFTS};
    use std::time::Instant;
    let bundle = trained_bundle();
    // The plan bought one draft on a pessimistic estimate; the drafts take far less.
    let plan = DraftPlan {
        drafts: 1,
        tokens_per_draft: 300,
        seconds_per_draft: 3600.0,
        tune_s: 0.0,
    };
    let free = request(5);
    let write = |req: &DraftRequest, deadline: Instant| {
        let dir = tempfile::tempdir().unwrap();
        write_drafts(
            &bundle,
            req,
            &plan,
            deadline,
            dir.path(),
            &Progress::hidden(),
        )
    };
    let ranked = |deadline: Instant| write(&free, deadline).unwrap().1;
    let hour = ranked(Instant::now() + Duration::from_secs(3600));
    assert_eq!(hour.len(), MOST_DRAFTS);
    let mut drafts: Vec<usize> = hour.iter().map(|c| c.draft).collect();
    drafts.sort();
    assert_eq!(drafts, (1..=MOST_DRAFTS).collect::<Vec<_>>());
    assert!(
        hour.windows(2).all(|w| w[0].score >= w[1].score),
        "ranked best first"
    );
    // When every draft fails, the stage fails with the first one's reason.
    let mut cramped = request(5);
    cramped.max_tokens = 8;
    let err = write(&cramped, Instant::now() + Duration::from_secs(3600)).unwrap_err();
    assert!(format!("{err:#}").contains("tokens"), "{err:#}");
}

#[test]
fn the_screenplay_stage_writes_takes_hand_edits_and_rewrites_on_a_new_seed() {
    use benjamin::film::{Film, FilmSettings};
    use benjamin::pipeline::StageId;
    use benjamin::screenplay::stage;

    let tok = tokenizer();
    let model_dir = tempfile::tempdir().unwrap();
    train::train(
        &docs(),
        &tok,
        &options(tiny(Arch::Gpt, tok.vocab_size()), 250),
        model_dir.path(),
        &Progress::hidden(),
        None,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = FilmSettings::new("Wet Streets".into(), Genre::Noir, 5, 0.05);
    settings.minutes = 0.5;
    settings.line = Some("Where were you at midnight?".into());
    settings.prop = Some("brass key".into());
    settings.screenplay_model = Some(model_dir.path().to_path_buf());
    let film = Film::save(dir.path(), &settings).unwrap();
    let pipeline = common::pipeline();
    let progress = Progress::hidden();

    let reports = pipeline.make(&film, &progress).unwrap();
    assert_eq!(reports[0].action, "ran");
    let fountain_path = film.stage_dir("screenplay").join(stage::FOUNTAIN_FILE);
    let written = std::fs::read_to_string(&fountain_path).unwrap();
    let parsed = stage::load(&film).unwrap();
    assert_eq!(parsed.title, "Wet Streets");
    assert!(written.contains("Where were you at midnight?") && written.contains("brass key"));
    assert_eq!(pipeline.make(&film, &progress).unwrap()[0].action, "fresh");

    // A hand edit is taken, not regenerated over.
    let edited = format!("{written}INT. NEW ROOM - DAY\n\nA scene written by hand.\n\n");
    std::fs::write(&fountain_path, &edited).unwrap();
    let status = pipeline.status(&film).unwrap();
    assert_eq!(status[0].state, "edited");
    assert_eq!(pipeline.make(&film, &progress).unwrap()[0].action, "ran");
    assert_eq!(std::fs::read_to_string(&fountain_path).unwrap(), edited);
    assert!(stage::load(&film)
        .unwrap()
        .scenes
        .iter()
        .any(|s| s.heading.place == "NEW ROOM"));
    assert_eq!(pipeline.status(&film).unwrap()[0].state, "fresh");

    // A new seed writes a new screenplay.
    let mut reseeded = film.settings.clone();
    reseeded.seed = 99;
    let film = Film::save(&film.dir, &reseeded).unwrap();
    assert_eq!(pipeline.status(&film).unwrap()[0].state, "stale");
    pipeline
        .run_one(&film, StageId::Screenplay, &progress)
        .unwrap();
    assert_ne!(std::fs::read_to_string(&fountain_path).unwrap(), edited);
}
