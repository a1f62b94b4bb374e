//! The screenplay tokenizer: byte-level BPE trained with the `tokenizers` crate on the corpora,
//! with one special token per genre and one that ends a screenplay.

use std::str::FromStr;

use anyhow::{anyhow, Context, Result};
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer, TokenizerBuilder};

use crate::film::Genre;

/// Ends a screenplay in the training stream.
pub const END: &str = "<|end|>";

/// The token that starts a screenplay of `genre`.
pub fn genre_token(genre: Genre) -> String {
    format!("<|{}|>", genre.name())
}

/// benjamin's special tokens: one per genre, then the end.
pub fn specials() -> Vec<String> {
    let mut s: Vec<String> = Genre::ALL.iter().map(|g| genre_token(*g)).collect();
    s.push(END.to_string());
    s
}

/// A trained tokenizer plus the ids benjamin needs.
#[derive(Clone)]
pub struct ScreenplayTokenizer {
    inner: Tokenizer,
}

impl ScreenplayTokenizer {
    /// Trains byte-level BPE with `vocab` entries on `texts`. `vocab` at or below 256 + the
    /// special tokens learns no merges: one token per byte, the character-level choice.
    pub fn train(texts: &[String], vocab: usize) -> Result<Self> {
        let specials: Vec<AddedToken> = specials()
            .into_iter()
            .map(|s| AddedToken::from(s, true))
            .collect();
        let mut trainer = BpeTrainerBuilder::new()
            .show_progress(false)
            .vocab_size(vocab)
            .min_frequency(2)
            .special_tokens(specials)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let byte_level = ByteLevel::default()
            .add_prefix_space(false)
            .trim_offsets(false);
        let mut tokenizer =
            TokenizerBuilder::<BPE, NormalizerWrapper, ByteLevel, ByteLevel, ByteLevel>::new()
                .with_model(BPE::default())
                .with_normalizer(None)
                .with_pre_tokenizer(Some(byte_level))
                .with_post_processor(None)
                .with_decoder(Some(byte_level))
                .build()
                .map_err(|e| anyhow!("cannot set up the tokenizer: {e}"))?;
        tokenizer
            .train(&mut trainer, texts.iter())
            .map_err(|e| anyhow!("tokenizer training failed: {e}"))?;
        let json = tokenizer
            .to_string(false)
            .map_err(|e| anyhow!("cannot encode the tokenizer: {e}"))?;
        Self::from_json(&json, "the trained tokenizer")
    }

    /// Loads a tokenizer saved by [`Self::to_json`]; `origin` names it in errors.
    pub fn from_json(json: &str, origin: &str) -> Result<Self> {
        let inner = Tokenizer::from_str(json)
            .map_err(|e| anyhow!("{origin} is not a valid tokenizer: {e}"))?;
        Self::from_tokenizer(inner, origin)
    }

    /// Wraps a tokenizer that has benjamin's special tokens; `origin` names it in errors.
    pub fn from_tokenizer(inner: Tokenizer, origin: &str) -> Result<Self> {
        for s in specials() {
            inner.token_to_id(&s).with_context(|| {
                format!("{origin} lacks the token {s}: it was not made by benjamin")
            })?;
        }
        Ok(ScreenplayTokenizer { inner })
    }

    /// For a base's tokenizer with benjamin's tokens after its `base_vocab`: the base token
    /// each of those starts from (a genre from the genre's name, the end from the base's own
    /// end of text), so that a fresh model reads them as something sensible.
    pub fn extra_token_origins(&self, base_vocab: usize) -> Result<Vec<u32>> {
        specials()
            .iter()
            .map(|s| {
                let word = match s.as_str() {
                    END => "<|endoftext|>".to_string(),
                    other => format!(" {}", other.trim_start_matches("<|").trim_end_matches("|>")),
                };
                let first = self.encode(&word)?.first().copied();
                first
                    .filter(|&id| (id as usize) < base_vocab)
                    .with_context(|| format!("the base's tokenizer cannot spell {word:?}"))
            })
            .collect()
    }

    pub fn to_json(&self) -> Result<String> {
        self.inner
            .to_string(false)
            .map_err(|e| anyhow!("cannot encode the tokenizer: {e}"))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .inner
            .encode(text, false)
            .map_err(|e| anyhow!("cannot tokenize: {e}"))?
            .get_ids()
            .to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| anyhow!("cannot detokenize: {e}"))
    }

    pub fn id(&self, token: &str) -> u32 {
        self.inner
            .token_to_id(token)
            .expect("special tokens are checked at load time")
    }

    /// The raw bytes a token stands for (byte-level BPE: tokens are byte strings).
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        self.decode(&[id])
            .map(|s| s.into_bytes())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<String> {
        vec![
            "INT. BAR - NIGHT\n\nRain on the glass.\n\nSAM\n(softly)\nYou came back.\n".repeat(20),
            "EXT. PIER - DAWN\n\nGulls. A body in the water.\n\nVERA\nI didn't do it, Sam.\n"
                .repeat(20),
        ]
    }

    #[test]
    fn round_trips_text_exactly_with_and_without_merges() {
        for vocab in [200, 400] {
            let tok = ScreenplayTokenizer::train(&sample(), vocab).unwrap();
            let text =
                "INT. DOCKS - NIGHT\n\nMARLOWE\n(whispering)\nIt's 3:15 -- café \"noir\".\n\n";
            let ids = tok.encode(text).unwrap();
            assert_eq!(tok.decode(&ids).unwrap(), text);
            let reloaded = ScreenplayTokenizer::from_json(&tok.to_json().unwrap(), "t").unwrap();
            assert_eq!(reloaded.encode(text).unwrap(), ids);
        }
    }

    #[test]
    fn merges_shorten_the_text_and_genres_have_their_own_tokens() {
        let chars = ScreenplayTokenizer::train(&sample(), 200).unwrap();
        let bpe = ScreenplayTokenizer::train(&sample(), 400).unwrap();
        let text = &sample()[0];
        assert!(bpe.encode(text).unwrap().len() * 2 < chars.encode(text).unwrap().len());
        let ids = bpe
            .encode(&format!("{}INT.", genre_token(Genre::Noir)))
            .unwrap();
        assert_eq!(ids[0], bpe.id("<|noir|>"));
    }
}
