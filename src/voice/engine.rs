//! Speech engines behind one small trait; espeak-ng, used as a library, is the one built in.
//! A neural engine (a Piper VITS voice, say) can be added by implementing [`SpeechEngine`].

use std::ffi::CString;
use std::os::raw::c_int;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

use super::cast::Voice;
use super::prosody::Delivery;

/// Turns one line into samples.
pub trait SpeechEngine {
    /// Name and version, for manifests and credits.
    fn name(&self) -> String;
    fn sample_rate(&self) -> u32;
    /// Mono 16-bit samples of `text` said by `voice` with `delivery`.
    fn speak(&mut self, text: &str, voice: &Voice, delivery: &Delivery) -> Result<Vec<i16>>;
}

extern "C" {
    /// libc's generator, which espeak-ng draws its noise (breath, aspiration) from.
    fn srand(seed: u32);
}

/// espeak-ng keeps global state, so every use goes through this lock.
static ESPEAK: Mutex<Option<u32>> = Mutex::new(None);

thread_local! {
    static SAMPLES: std::cell::RefCell<Vec<i16>> = const { std::cell::RefCell::new(Vec::new()) };
}

extern "C" fn collect(
    wav: *mut i16,
    count: c_int,
    _events: *mut espeakng_sys::espeak_EVENT,
) -> c_int {
    if !wav.is_null() && count > 0 {
        let chunk = unsafe { std::slice::from_raw_parts(wav, count as usize) };
        SAMPLES.with(|s| s.borrow_mut().extend_from_slice(chunk));
    }
    0
}

/// espeak-ng through its C library (Debian's libespeak-ng).
pub struct Espeak {
    rate: u32,
}

impl Espeak {
    pub fn new() -> Result<Self> {
        let mut guard = ESPEAK.lock().unwrap();
        if let Some(rate) = *guard {
            return Ok(Espeak { rate });
        }
        let rate = unsafe {
            espeakng_sys::espeak_Initialize(
                espeakng_sys::espeak_AUDIO_OUTPUT_AUDIO_OUTPUT_SYNCHRONOUS,
                0,
                std::ptr::null(),
                0,
            )
        };
        if rate <= 0 {
            bail!("espeak-ng failed to start (is its data installed? `apt-get install espeak-ng`)");
        }
        unsafe { espeakng_sys::espeak_SetSynthCallback(Some(collect)) };
        *guard = Some(rate as u32);
        Ok(Espeak { rate: rate as u32 })
    }
}

fn set(param: espeakng_sys::espeak_PARAMETER, value: i32) -> Result<()> {
    let err = unsafe { espeakng_sys::espeak_SetParameter(param, value, 0) };
    if err != espeakng_sys::espeak_ERROR_EE_OK {
        bail!("espeak-ng refused parameter {param} = {value}");
    }
    Ok(())
}

impl SpeechEngine for Espeak {
    fn name(&self) -> String {
        "espeak-ng".to_string()
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn speak(&mut self, text: &str, voice: &Voice, delivery: &Delivery) -> Result<Vec<i16>> {
        let _guard = ESPEAK.lock().unwrap();
        let variant = if delivery.whisper {
            "whisper"
        } else {
            voice.variant.as_str()
        };
        let name = CString::new(format!("{}+{variant}", voice.language))
            .context("voice name contains NUL")?;
        let err = unsafe { espeakng_sys::espeak_SetVoiceByName(name.as_ptr()) };
        if err != espeakng_sys::espeak_ERROR_EE_OK {
            bail!("espeak-ng has no voice {:?}; edit voices.json to use one `espeak-ng --voices` lists", name);
        }
        set(
            espeakng_sys::espeak_PARAMETER_espeakRATE,
            ((voice.rate as f32 * delivery.rate) as i32).clamp(80, 450),
        )?;
        set(
            espeakng_sys::espeak_PARAMETER_espeakPITCH,
            (voice.pitch as i32 + delivery.pitch).clamp(0, 99),
        )?;
        set(
            espeakng_sys::espeak_PARAMETER_espeakRANGE,
            (voice.range as i32 + delivery.range).clamp(0, 99),
        )?;
        set(
            espeakng_sys::espeak_PARAMETER_espeakVOLUME,
            delivery.volume.clamp(0, 200),
        )?;
        let ssml = delivery.ssml(text);
        let c_text = CString::new(ssml.clone()).context("line contains NUL")?;
        SAMPLES.with(|s| s.borrow_mut().clear());
        // Same line, same voice, same noise. (espeak-ng's wave generator also keeps a phase from
        // one utterance to the next that nothing resets, so a line is reproducible when the
        // lines before it in the process are the same: a stage run is, from one run to the next.)
        let seed = ssml
            .bytes()
            .chain(name.as_bytes().iter().copied())
            .fold(2_166_136_261u32, |h, b| {
                (h ^ b as u32).wrapping_mul(16_777_619)
            });
        unsafe { srand(seed) };
        let flags = espeakng_sys::espeakCHARS_UTF8 | espeakng_sys::espeakSSML;
        let err = unsafe {
            espeakng_sys::espeak_Synth(
                c_text.as_ptr() as *const _,
                c_text.as_bytes_with_nul().len(),
                0,
                espeakng_sys::espeak_POSITION_TYPE_POS_CHARACTER,
                0,
                flags,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if err != espeakng_sys::espeak_ERROR_EE_OK {
            bail!("espeak-ng could not say {text:?}");
        }
        unsafe { espeakng_sys::espeak_Synchronize() };
        Ok(SAMPLES.with(|s| std::mem::take(&mut *s.borrow_mut())))
    }
}
