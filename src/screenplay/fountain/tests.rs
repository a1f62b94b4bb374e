use super::*;

const TRICKY: &str = r#"Title: _The Long Rain_
Credit: Written by
Author: benjamin
Draft date: 1 May

/* This whole scene was cut.
INT. CUT SCENE - DAY
*/
FADE IN:

INT. BLUE NOTE BAR - NIGHT #1#

Rain streaks the window. [[Make the rain louder.]] A trumpet case sits on the bar.

SAM
(whispering)
You shouldn't be here.
(beat)
Not tonight.

VERA
Neither should you.

MARLOWE ^
Both of you, out.

===

.FLASHBACK - THE PIER

!SAM STANDS ALONE.

@McCLANE
Yippee.

> THE END <

CUT TO:

EXT. PIER - DAWN

# Act two
= The pier at dawn.

Gulls.
"#;

#[test]
fn title_page_boneyard_notes_and_page_breaks_are_handled() {
    let s = parse(TRICKY);
    assert_eq!(s.title, "The Long Rain");
    assert_eq!(s.scenes.len(), 3, "{:#?}", s.scenes);
    let all = serde_json::to_string(&s).unwrap();
    assert!(!all.contains("CUT SCENE"), "boneyard must be dropped");
    assert!(!all.contains("louder"), "notes must be dropped");
    assert!(!all.contains("==="));
    assert!(
        !all.contains("Act two") && !all.contains("The pier at dawn."),
        "sections and synopses are not screen text"
    );
}

#[test]
fn headings_are_split_into_kind_place_and_time() {
    let s = parse(TRICKY);
    let h = &s.scenes[0].heading;
    assert_eq!(
        (h.int_ext.as_str(), h.place.as_str(), h.time.as_str()),
        ("INT", "BLUE NOTE BAR", "NIGHT")
    );
    let forced = &s.scenes[1].heading;
    assert_eq!(forced.text, "FLASHBACK - THE PIER");
    assert_eq!(forced.int_ext, "");
    assert_eq!(s.scenes[2].heading.time, "DAWN");
    let ie = parse_heading("INT./EXT. CAR - MOVING - DAY").unwrap();
    assert_eq!(
        (ie.int_ext.as_str(), ie.place.as_str(), ie.time.as_str()),
        ("INT/EXT", "CAR - MOVING", "DAY")
    );
    assert!(parse_heading("Interesting times.").is_none());
    assert!(parse_heading("...and then").is_none());
}

#[test]
fn dialogue_parentheticals_dual_and_forced_elements() {
    let s = parse(TRICKY);
    let e = &s.scenes[0].elements;
    let dialogue: Vec<&Dialogue> = e
        .iter()
        .filter_map(|e| {
            if let Element::Dialogue(d) = e {
                Some(d)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(dialogue.len(), 4);
    assert_eq!(dialogue[0].parenthetical.as_deref(), Some("(whispering)"));
    assert_eq!(dialogue[0].text, "You shouldn't be here.");
    assert_eq!(
        (
            dialogue[1].character.as_str(),
            dialogue[1].parenthetical.as_deref(),
            dialogue[1].text.as_str()
        ),
        ("SAM", Some("(beat)"), "Not tonight.")
    );
    assert!(dialogue[3].dual && dialogue[3].character == "MARLOWE");
    assert!(!dialogue[2].dual);
    let flashback = &s.scenes[1].elements;
    assert_eq!(
        flashback[0],
        Element::Action {
            text: "SAM STANDS ALONE.".into()
        }
    );
    assert!(
        matches!(&flashback[1], Element::Dialogue(d) if d.character == "McCLANE" && d.text == "Yippee.")
    );
    assert_eq!(
        flashback[2],
        Element::Centered {
            text: "THE END".into()
        }
    );
    assert_eq!(
        flashback[3],
        Element::Transition {
            text: "CUT TO:".into()
        }
    );
    assert_eq!(s.characters, vec!["SAM", "VERA", "MARLOWE", "McCLANE"]);
}

#[test]
fn writing_and_parsing_again_keeps_the_screenplay() {
    let s = parse(TRICKY);
    let again = parse(&write(&s));
    assert_eq!(again, s);
}

#[test]
fn duration_follows_the_page_a_minute_rule() {
    let page: String = (0..20)
        .map(|i| format!("Line of action number {i} that is fairly long.\n\n"))
        .collect();
    let s = parse(&format!("INT. ROOM - DAY\n\n{page}"));
    // 20 action lines + 20 blanks + heading and its blank: 42 of a page's 55 lines.
    assert!(
        (s.estimated_seconds - 42.0 * 60.0 / 55.0).abs() < 1e-9,
        "{}",
        s.estimated_seconds
    );
}
