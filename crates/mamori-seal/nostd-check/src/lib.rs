//! Seals and verifies one record with no std: what a TEE's trusted application would link.
#![no_std]

use mamori_seal::{Key, Kind, Sealer, Verifier};

/// Seals `payload` with the first key `k0` and checks it again; 1 when it verifies.
#[no_mangle]
pub extern "C" fn mamori_seal_roundtrip(k0: &[u8; 32], payload: &[u8; 16]) -> u8 {
    let mut s = Sealer::new(Key::from_bytes(*k0));
    let Ok(h) = s.seal(Kind::Audit, 0, payload) else {
        return 0;
    };
    u8::from(Verifier::new(Key::from_bytes(*k0)).check(&h, payload).clean())
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
