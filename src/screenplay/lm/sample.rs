//! Seeded sampling: temperature, top-k, top-p and a repetition penalty, and what a draft is
//! asked for (genre, length, the festival's constraints, the cast). The draft itself is
//! written in [`super::draft`].

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::film::Genre;
pub use crate::film::SamplingOptions;

/// Makes the `penalised` tokens among `recent` less likely (CTRL's penalty: a positive logit
/// divided by `penalty`, a negative one multiplied), each once.
pub(super) fn penalise_repeats(
    logits: &mut [f32],
    recent: &[u32],
    penalised: &[bool],
    penalty: f32,
) {
    if penalty == 1.0 {
        return;
    }
    let mut seen: Vec<u32> = recent.to_vec();
    seen.sort_unstable();
    seen.dedup();
    for id in seen {
        let i = id as usize;
        if penalised.get(i) == Some(&true) {
            let l = &mut logits[i];
            *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
        }
    }
}

/// What must be in the screenplay.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Constraints {
    pub title: String,
    pub line: Option<String>,
    pub prop: Option<String>,
    /// The characters who speak (every cue is one of them); empty leaves the model free.
    pub cast: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DraftRequest {
    pub genre: Genre,
    pub seed: u64,
    /// Screen time to aim for.
    pub target_seconds: f64,
    pub constraints: Constraints,
    pub sampling: SamplingOptions,
    /// Hard cap on generated tokens.
    pub max_tokens: usize,
}

/// Draws a token id from `logits` with temperature, top-k and top-p, never one of `banned`.
pub fn sample_token(
    logits: &[f32],
    opts: &SamplingOptions,
    banned: &[u32],
    rng: &mut ChaCha8Rng,
) -> u32 {
    // A pretrained base has tens of thousands of tokens (and a ban list as long after a
    // forced word): mark the bans once, and sort only the k best.
    let mut allowed = vec![true; logits.len()];
    for &b in banned {
        if let Some(a) = allowed.get_mut(b as usize) {
            *a = false;
        }
    }
    let mut idx: Vec<usize> = (0..logits.len()).filter(|&i| allowed[i]).collect();
    let better = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    let k = if opts.temperature <= 0.0 {
        1
    } else {
        opts.top_k.max(1)
    };
    if idx.len() > k {
        idx.select_nth_unstable_by(k - 1, better);
        idx.truncate(k);
    }
    idx.sort_by(better);
    if opts.temperature <= 0.0 {
        return idx[0] as u32;
    }
    let max = logits[idx[0]];
    let mut probs: Vec<f32> = idx
        .iter()
        .map(|&i| ((logits[i] - max) / opts.temperature).exp())
        .collect();
    let sum: f32 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= sum);
    let mut keep = 0;
    let mut acc = 0.0;
    for p in &probs {
        keep += 1;
        acc += p;
        if acc >= opts.top_p {
            break;
        }
    }
    let total: f32 = probs[..keep].iter().sum();
    let mut r = rng.random::<f32>() * total;
    for (i, p) in probs[..keep].iter().enumerate() {
        r -= p;
        if r <= 0.0 {
            return idx[i] as u32;
        }
    }
    idx[keep - 1] as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sampling_respects_top_k_bans_and_the_seed() {
        let logits = vec![0.0, 5.0, 4.9, -3.0, 4.8];
        let opts = SamplingOptions {
            temperature: 1.0,
            top_k: 2,
            top_p: 1.0,
            repetition_penalty: 1.0,
        };
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..50)
                .map(|_| sample_token(&logits, &opts, &[1], &mut rng))
                .collect::<Vec<_>>()
        };
        let a = draw(7);
        assert!(
            a.iter().all(|&t| t == 2 || t == 4),
            "only the two best unbanned tokens: {a:?}"
        );
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        let greedy = SamplingOptions {
            temperature: 0.0,
            ..opts
        };
        assert_eq!(
            sample_token(&logits, &greedy, &[], &mut ChaCha8Rng::seed_from_u64(0)),
            1
        );
    }
}
