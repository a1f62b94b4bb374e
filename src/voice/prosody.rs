//! Delivery from the screenplay: parentheticals and punctuation steer rate, pitch, range,
//! volume and pauses (through espeak-ng's SSML breaks and its parameters).

/// How a line is delivered, relative to the character's voice.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Delivery {
    /// Multiplies the voice's words per minute.
    pub rate: f32,
    /// Added to the voice's pitch (0-99 scale).
    pub pitch: i32,
    /// Added to the voice's pitch range.
    pub range: i32,
    /// espeak-ng volume, 100 is normal.
    pub volume: i32,
    pub whisper: bool,
    /// Silence before the line, seconds.
    pub pause_before: f64,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            rate: 1.0,
            pitch: 0,
            range: 0,
            volume: 100,
            whisper: false,
            pause_before: 0.0,
        }
    }
}

/// The delivery a parenthetical and the line's own punctuation ask for. Unknown
/// parentheticals change nothing.
pub fn delivery(parenthetical: Option<&str>, text: &str) -> Delivery {
    let mut d = Delivery::default();
    let p = parenthetical.unwrap_or("").to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| p.contains(w));
    if has(&[
        "whisper",
        "under her breath",
        "under his breath",
        "under their breath",
        "sotto",
    ]) {
        d.whisper = true;
        d.volume = 70;
        d.rate = 0.9;
    } else if has(&["shout", "yell", "scream", "bellow", "roar"]) {
        d.volume = 170;
        d.rate = 1.1;
        d.pitch = 12;
        d.range = 20;
    } else if has(&["angr", "furious", "snap", "hiss"]) {
        d.volume = 140;
        d.rate = 1.08;
        d.pitch = 5;
        d.range = 15;
    } else if has(&["soft", "quiet", "gentl", "tender", "murmur"]) {
        d.volume = 70;
        d.rate = 0.9;
        d.pitch = -5;
        d.range = -10;
    } else if has(&["sad", "tear", "crying", "sob", "weary", "tired"]) {
        d.rate = 0.85;
        d.pitch = -8;
        d.range = -10;
    } else if has(&["laugh", "grin", "amused", "excit"]) {
        d.rate = 1.05;
        d.pitch = 6;
        d.range = 10;
    } else if has(&["nervous", "hurried", "quick", "fast", "panic"]) {
        d.rate = 1.15;
        d.pitch = 4;
    }
    if has(&["beat", "pause", "hesitat"]) {
        d.pause_before = 0.6;
    }
    if text.trim_end().ends_with('!') && !d.whisper {
        d.volume += 15;
        d.range += 10;
    }
    d
}

impl Delivery {
    /// The line as SSML: ellipses and dashes become pauses, questions keep espeak-ng's rising
    /// intonation, and `<`/`&` are escaped.
    pub fn ssml(&self, text: &str) -> String {
        let escaped = text
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let with_breaks = escaped
            .replace("...", "<break time=\"450ms\"/>")
            .replace(" -- ", " <break time=\"250ms\"/> ")
            .replace("--", " <break time=\"250ms\"/> ")
            .replace(" - ", " <break time=\"200ms\"/> ");
        format!("<speak>{with_breaks}</speak>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parentheticals_move_delivery_the_right_way_and_unknown_ones_do_nothing() {
        let plain = delivery(None, "Go.");
        let whisper = delivery(Some("(whispering)"), "Go.");
        let shout = delivery(Some("(shouting)"), "Go!");
        assert!(whisper.whisper && whisper.volume < plain.volume && whisper.rate < plain.rate);
        assert!(
            shout.volume > plain.volume && shout.rate > plain.rate && shout.pitch > plain.pitch
        );
        assert!(delivery(Some("(beat)"), "So.").pause_before > 0.0);
        assert_eq!(delivery(Some("(to the barman, in Latin)"), "Go."), plain);
    }

    #[test]
    fn ellipses_and_dashes_become_breaks_and_markup_is_escaped() {
        let s = Delivery::default().ssml("Wait... I -- <no> & yes");
        assert!(s.contains("<break time=\"450ms\"/>") && s.contains("<break time=\"250ms\"/>"));
        assert!(s.contains("&lt;no&gt; &amp; yes"), "{s}");
    }
}
