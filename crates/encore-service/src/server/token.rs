//! The tokens in callback URLs: an HMAC-SHA256 of (job, step) under the server's secret, so
//! that a callback URL is a credential for exactly one job's step, can be checked without a
//! lookup, and cannot be forged or moved to another job. Compared in constant time.

use encore_pipeline::StepName;
use encore_store::JobId;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How many bytes of the MAC a token carries (128 bits, as 32 hex digits).
const TOKEN_BYTES: usize = 16;

/// The secret that signs callback URLs (never shown: its `Debug` is redacted).
#[derive(Clone)]
pub struct CallbackSecret(Vec<u8>);

impl std::fmt::Debug for CallbackSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackSecret(<redacted>)")
    }
}

impl CallbackSecret {
    /// A secret from its text (at least 16 bytes).
    ///
    /// # Errors
    ///
    /// When it is shorter than 16 bytes.
    pub fn new(text: &str) -> Result<CallbackSecret, &'static str> {
        if text.len() < 16 {
            return Err("must be at least 16 characters");
        }
        Ok(CallbackSecret(text.as_bytes().to_vec()))
    }

    /// A new random secret, as text (64 hex digits).
    pub fn generate() -> String {
        let bytes: [u8; 32] = rand::random();
        hex(&bytes)
    }

    fn mac(&self, job: JobId, step: StepName) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"encore-callback\0");
        mac.update(job.to_string().as_bytes());
        mac.update(b"\0");
        mac.update(step.as_str().as_bytes());
        mac
    }

    /// The token for `step` of `job`.
    pub fn token(&self, job: JobId, step: StepName) -> String {
        let tag = self.mac(job, step).finalize().into_bytes();
        hex(&tag[..TOKEN_BYTES])
    }

    /// Whether `token` is the one for `step` of `job` (in constant time).
    pub fn verify(&self, job: JobId, step: StepName, token: &str) -> bool {
        let Some(bytes) = unhex(token) else {
            return false;
        };
        if bytes.len() != TOKEN_BYTES {
            return false;
        }
        self.mac(job, step).verify_truncated_left(&bytes).is_ok()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_one_job_and_step() {
        let secret = CallbackSecret::new("0123456789abcdef-secret").unwrap();
        let (a, b) = (JobId::generate(), JobId::generate());
        let token = secret.token(a, StepName::SongSubmit);
        assert_eq!(token.len(), 32);
        assert!(secret.verify(a, StepName::SongSubmit, &token));
        assert!(!secret.verify(b, StepName::SongSubmit, &token));
        assert!(!secret.verify(a, StepName::VideoSubmit, &token));
        let other = CallbackSecret::new("another-secret-of-16+").unwrap();
        assert!(!other.verify(a, StepName::SongSubmit, &token));
        let mut flipped = token.clone().into_bytes();
        flipped[31] = if flipped[31] == b'0' { b'1' } else { b'0' };
        assert!(!secret.verify(
            a,
            StepName::SongSubmit,
            std::str::from_utf8(&flipped).unwrap()
        ));
        for bad in ["", "zz", &token[..30], &format!("{token}00"), "é"] {
            assert!(!secret.verify(a, StepName::SongSubmit, bad), "{bad}");
        }
        assert!(CallbackSecret::new("short").is_err());
        assert_eq!(format!("{secret:?}"), "CallbackSecret(<redacted>)");
        assert_eq!(CallbackSecret::generate().len(), 64);
    }
}
