//! `CertificateChain::decode` and `verify`, and `CertDetails::decode`:
//!
//! - mode 0: arbitrary bytes as a chain and as details: a decoded chain or details encode to
//!   bytes that decode to the same value; verifying never panics;
//! - mode 1: a chain built from fuzz input — each certificate's details raw bytes or encoded
//!   fields (serials, bounds around `now`, the expected key or another), signed by the right
//!   issuer (or not) — so verification reaches every check. An accepted chain satisfies every
//!   rule `verify` documents.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use wa_signal::curve::{KeyPair, PublicKey};
use wa_signal::noise::{CertDetails, CertRole, Certificate, CertificateChain, UnixTime};
use wa_signal_fuzz::key_pair;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    if control & 1 == 0 {
        raw(rest);
    } else {
        let _ = built(&mut Unstructured::new(rest));
    }
});

fn raw(bytes: &[u8]) {
    if let Ok(chain) = CertificateChain::decode(bytes) {
        assert_eq!(
            CertificateChain::decode(&chain.encode()).expect("re-encoded chain decodes"),
            chain
        );
        let _ = chain.verify(
            &key_pair(3).public,
            &key_pair(5).public,
            UnixTime::from_secs(1_750_000_000),
        );
    }
    for role in [CertRole::Intermediate, CertRole::Leaf] {
        if let Ok(details) = CertDetails::decode(bytes, role) {
            assert_eq!(
                CertDetails::decode(&details.encode(), role).expect("re-encoded details decode"),
                details
            );
        }
    }
}

/// A time, often at an edge.
fn time(u: &mut Unstructured<'_>, near: u64) -> Result<u64> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 => near.wrapping_add_signed(u.int_in_range(-2..=2)?),
        1 => 0,
        2 => u64::MAX,
        _ => u.arbitrary()?,
    })
}

fn details(u: &mut Unstructured<'_>, key: PublicKey, now: u64) -> Result<Vec<u8>> {
    if u.ratio(1u8, 6)? {
        return u.arbitrary();
    }
    let details = CertDetails {
        serial: u.int_in_range(0..=3)?,
        issuer_serial: u.int_in_range(0..=3)?,
        key: if u.ratio(7u8, 8)? {
            key
        } else {
            PublicKey::from_raw(u.arbitrary()?)
        },
        not_before: if u.arbitrary()? {
            Some(time(u, now)?)
        } else {
            None
        },
        not_after: if u.arbitrary()? {
            Some(time(u, now)?)
        } else {
            None
        },
    };
    let mut bytes = details.encode();
    if u.ratio(1u8, 8)? {
        bytes.extend(u.arbitrary::<Vec<u8>>()?);
    }
    Ok(bytes)
}

fn certificate(
    u: &mut Unstructured<'_>,
    details: Vec<u8>,
    issuer: &KeyPair,
) -> Result<Certificate> {
    let signature = match u.int_in_range(0u8..=7)? {
        0 => u.arbitrary()?,
        1 => key_pair(9)
            .private
            .sign_with_randomness(&details, &[1; 64])
            .to_vec(),
        _ => issuer
            .private
            .sign_with_randomness(&details, &[1; 64])
            .to_vec(),
    };
    Ok(Certificate { details, signature })
}

fn built(u: &mut Unstructured<'_>) -> Result<()> {
    let (root, intermediate, server_static) = (key_pair(3), key_pair(4), key_pair(5));
    let now = time(u, 1_750_000_000)?;
    let intermediate_details = details(u, intermediate.public, now)?;
    let leaf_details = details(u, server_static.public, now)?;
    let chain = CertificateChain {
        intermediate: certificate(u, intermediate_details, &root)?,
        leaf: certificate(u, leaf_details, &intermediate)?,
    };
    assert_eq!(
        CertificateChain::decode(&chain.encode()).expect("an encoded chain decodes"),
        chain
    );
    let Ok(verified) = chain.verify(
        &root.public,
        &server_static.public,
        UnixTime::from_secs(now),
    ) else {
        return Ok(());
    };
    let i = &verified.intermediate;
    let l = &verified.leaf;
    assert!(
        root.public
            .verify(&chain.intermediate.details, &chain.intermediate.signature)
    );
    assert!(i.key.verify(&chain.leaf.details, &chain.leaf.signature));
    assert_eq!(
        i,
        &CertDetails::decode(&chain.intermediate.details, CertRole::Intermediate).expect("decodes")
    );
    assert_eq!(
        l,
        &CertDetails::decode(&chain.leaf.details, CertRole::Leaf).expect("decodes")
    );
    assert_eq!(i.issuer_serial, 0);
    assert_eq!(l.issuer_serial, i.serial);
    assert_eq!(l.key, server_static.public);
    for d in [i, l] {
        assert!(
            d.not_before.is_none_or(|from| from <= now),
            "{d:?} at {now}"
        );
        assert!(
            d.not_after.is_none_or(|until| now <= until),
            "{d:?} at {now}"
        );
    }
    Ok(())
}
