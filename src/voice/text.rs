//! Making screenplay dialogue sayable: Fountain emphasis and bracketed stage text removed,
//! numbers, abbreviations and symbols spelled out, anything the engine cannot say dropped.

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// English words for a whole number (up to the trillions).
pub fn number_words(n: u64) -> String {
    if n < 20 {
        return ONES[n as usize].to_string();
    }
    if n < 100 {
        let t = TENS[(n / 10) as usize];
        return if n.is_multiple_of(10) {
            t.to_string()
        } else {
            format!("{t}-{}", ONES[(n % 10) as usize])
        };
    }
    if n < 1000 {
        let rest = n % 100;
        let head = format!("{} hundred", ONES[(n / 100) as usize]);
        return if rest == 0 {
            head
        } else {
            format!("{head} and {}", number_words(rest))
        };
    }
    for (scale, name) in [
        (1_000_000_000_000u64, "trillion"),
        (1_000_000_000, "billion"),
        (1_000_000, "million"),
        (1_000, "thousand"),
    ] {
        if n >= scale {
            let rest = n % scale;
            let head = format!("{} {name}", number_words(n / scale));
            return match rest {
                0 => head,
                r if r < 100 => format!("{head} and {}", number_words(r)),
                r => format!("{head} {}", number_words(r)),
            };
        }
    }
    unreachable!()
}

/// A year-like number read the way people say it: 1947 -> "nineteen forty-seven".
fn year_words(n: u64) -> String {
    let (hi, lo) = (n / 100, n % 100);
    match lo {
        0 => format!("{} hundred", number_words(hi)),
        1..=9 => format!("{} oh {}", number_words(hi), number_words(lo)),
        _ => format!("{} {}", number_words(hi), number_words(lo)),
    }
}

fn spell_number(digits: &str, next: Option<char>) -> String {
    let clean: String = digits.chars().filter(|c| *c != ',').collect();
    let Ok(n) = clean.parse::<u64>() else {
        return clean
            .chars()
            .map(|d| number_words(d.to_digit(10).unwrap_or(0) as u64))
            .collect::<Vec<_>>()
            .join(" ");
    };
    let yearish = clean.len() == 4
        && (1100..=2099).contains(&n)
        && !digits.contains(',')
        && n % 1000 >= 100
        && next != Some('%');
    if yearish && !(2000..=2009).contains(&n) {
        year_words(n)
    } else {
        number_words(n)
    }
}

const ABBREVIATIONS: [(&str, &str); 14] = [
    ("Mr.", "Mister"),
    ("Mrs.", "Missus"),
    ("Ms.", "Miz"),
    ("Dr.", "Doctor"),
    ("St.", "Saint"),
    ("Jr.", "Junior"),
    ("Sr.", "Senior"),
    ("Lt.", "Lieutenant"),
    ("Sgt.", "Sergeant"),
    ("Capt.", "Captain"),
    ("Det.", "Detective"),
    ("Prof.", "Professor"),
    ("vs.", "versus"),
    ("etc.", "et cetera"),
];

/// Dialogue as the engine should say it, or `None` when nothing sayable is left.
pub fn normalise(text: &str) -> Option<String> {
    // Stage text in brackets is not spoken; neither are notes.
    let mut s = String::with_capacity(text.len());
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => s.push(c),
            _ => {}
        }
    }
    // Fountain emphasis: *italics*, **bold**, _underline_ (escaped \* stays literal).
    let s = s
        .replace("\\*", "\u{1}")
        .replace(['*', '_'], "")
        .replace('\u{1}', "*");
    let mut words: Vec<String> = Vec::new();
    for word in s.split_whitespace() {
        if let Some((_, full)) = ABBREVIATIONS
            .iter()
            .find(|(a, _)| word.eq_ignore_ascii_case(a))
        {
            words.push(full.to_string());
        } else {
            words.push(word.to_string());
        }
    }
    let s = words.join(" ");
    let mut out = String::with_capacity(s.len() + 16);
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (chars[i] == ',' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())))
            {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            // Times: 3:15 -> three fifteen; decimals: 2.5 -> two point five.
            if i + 1 < chars.len()
                && (chars[i] == ':' || chars[i] == '.')
                && chars[i + 1].is_ascii_digit()
            {
                let sep = chars[i];
                let frac_start = i + 1;
                let mut j = frac_start;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                let frac: String = chars[frac_start..j].iter().collect();
                out += &spell_number(&digits, None);
                if sep == ':' {
                    let m: u64 = frac.parse().unwrap_or(0);
                    out += &match m {
                        0 => " o'clock".to_string(),
                        1..=9 => format!(" oh {}", number_words(m)),
                        _ => format!(" {}", number_words(m)),
                    };
                } else {
                    out += " point";
                    for d in frac.chars() {
                        out += " ";
                        out += &number_words(d.to_digit(10).unwrap() as u64);
                    }
                }
                i = j;
                continue;
            }
            out += &spell_number(&digits, chars.get(i).copied());
            continue;
        }
        match c {
            '&' => out += " and ",
            '%' => out += " percent",
            '@' => out += " at ",
            '#' => out += " number ",
            '+' => out += " plus ",
            '=' => out += " equals ",
            '$' => {
                // "$20" -> "twenty dollars".
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == ',') {
                    j += 1;
                }
                if j > start {
                    let digits: String = chars[start..j].iter().collect();
                    out += &spell_number(&digits, None);
                    out += " dollars";
                    i = j;
                    continue;
                }
                out += " dollars ";
            }
            '\u{2014}' | '\u{2013}' => out += ", ",
            '\u{2018}' | '\u{2019}' => out.push('\''),
            '\u{201c}' | '\u{201d}' => out.push('"'),
            '\u{2026}' => out += "...",
            c if c.is_alphanumeric() || c.is_whitespace() || ".,;:!?'\"-()".contains(c) => {
                out.push(c)
            }
            // Symbols the engine would read out by name, or not at all, are dropped.
            _ => out.push(' '),
        }
        i += 1;
    }
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    out.chars().any(|c| c.is_alphanumeric()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_years_times_and_money_are_spelled_out() {
        assert_eq!(number_words(0), "zero");
        assert_eq!(number_words(42), "forty-two");
        assert_eq!(number_words(1_000_001), "one million and one");
        assert_eq!(
            number_words(2_345),
            "two thousand three hundred and forty-five"
        );
        assert_eq!(
            normalise("It was 1947.").unwrap(),
            "It was nineteen forty-seven."
        );
        assert_eq!(
            normalise("Meet me at 3:15, not 3:05.").unwrap(),
            "Meet me at three fifteen, not three oh five."
        );
        assert_eq!(
            normalise("Give me $20 and 50% of it.").unwrap(),
            "Give me twenty dollars and fifty percent of it."
        );
        assert_eq!(
            normalise("Pi is 3.14").unwrap(),
            "Pi is three point one four"
        );
        assert_eq!(
            normalise("He owes 12,500.").unwrap(),
            "He owes twelve thousand five hundred."
        );
    }

    #[test]
    fn abbreviations_markup_and_stage_text_are_normalised() {
        assert_eq!(
            normalise("Dr. Vance and Mr. Cole").unwrap(),
            "Doctor Vance and Mister Cole"
        );
        assert_eq!(
            normalise("I *never* said **that**, _ever_.").unwrap(),
            "I never said that, ever."
        );
        assert_eq!(normalise("Run! [gunshots] Now!").unwrap(), "Run! Now!");
        assert_eq!(
            normalise("Salt & pepper \u{2014} that\u{2019}s all").unwrap(),
            "Salt and pepper , that's all"
        );
        assert_eq!(normalise("Hello \u{1F600} world ~").unwrap(), "Hello world");
    }

    #[test]
    fn nothing_sayable_gives_none() {
        assert_eq!(normalise("   "), None);
        assert_eq!(normalise("[silence]"), None);
        assert_eq!(normalise("..."), None);
    }
}
