//! Signing through SoftHSM, checked with RustCrypto verifiers.

use super::*;
use crate::Pin;
use crate::testing::{USER_PIN, fresh_token, fresh_token_with_pool, softhsm, softhsm_conf_path};
use der::{Decode, Encode};
use signature::Verifier;
use spki::DecodePublicKey;

fn spki_der(key: &HsmKey) -> Vec<u8> {
    key.public_key_info().to_der().expect("spki der")
}

/// Verifies `sig` over `msg` with the RustCrypto verifier matching the key, hash and padding.
fn rustcrypto_verify(key: &HsmKey, msg: &[u8], sig: &[u8]) -> Result<(), String> {
    use signature::hazmat::PrehashVerifier;
    let der = spki_der(key);
    let digest = key.hash().digest(msg);
    let e = |e: signature::Error| e.to_string();
    match key.algorithm() {
        KeyAlgorithm::EcP256 => {
            let vk =
                p256::ecdsa::VerifyingKey::from_public_key_der(&der).map_err(|e| e.to_string())?;
            let sig = p256::ecdsa::DerSignature::from_bytes(sig).map_err(e)?;
            if key.hash() == HashAlgorithm::Sha256 {
                vk.verify(msg, &sig).map_err(e)
            } else {
                vk.verify_prehash(&digest, &sig).map_err(e)
            }
        }
        KeyAlgorithm::EcP384 => {
            let vk =
                p384::ecdsa::VerifyingKey::from_public_key_der(&der).map_err(|e| e.to_string())?;
            let sig = p384::ecdsa::DerSignature::from_bytes(sig).map_err(e)?;
            if key.hash() == HashAlgorithm::Sha384 {
                vk.verify(msg, &sig).map_err(e)
            } else {
                vk.verify_prehash(&digest, &sig).map_err(e)
            }
        }
        _ => {
            use rsa::pkcs8::DecodePublicKey as _;
            let pk = rsa::RsaPublicKey::from_public_key_der(&der).map_err(|e| e.to_string())?;
            macro_rules! check {
                ($module:ident, $sig:ty, $hash:ty) => {{
                    let vk = rsa::$module::VerifyingKey::<$hash>::new(pk);
                    let sig = <$sig>::try_from(sig).map_err(e)?;
                    vk.verify(msg, &sig).map_err(e)
                }};
            }
            match (key.rsa_padding(), key.hash()) {
                (RsaPadding::Pkcs1v15, HashAlgorithm::Sha256) => {
                    check!(pkcs1v15, rsa::pkcs1v15::Signature, sha2::Sha256)
                }
                (RsaPadding::Pkcs1v15, HashAlgorithm::Sha384) => {
                    check!(pkcs1v15, rsa::pkcs1v15::Signature, sha2::Sha384)
                }
                (RsaPadding::Pkcs1v15, HashAlgorithm::Sha512) => {
                    check!(pkcs1v15, rsa::pkcs1v15::Signature, sha2::Sha512)
                }
                (RsaPadding::Pss, HashAlgorithm::Sha256) => {
                    check!(pss, rsa::pss::Signature, sha2::Sha256)
                }
                (RsaPadding::Pss, HashAlgorithm::Sha384) => {
                    check!(pss, rsa::pss::Signature, sha2::Sha384)
                }
                (RsaPadding::Pss, HashAlgorithm::Sha512) => {
                    check!(pss, rsa::pss::Signature, sha2::Sha512)
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_generates_signs_and_verifies_with_rustcrypto() {
    let token = fresh_token("every-algorithm");
    for algorithm in KeyAlgorithm::ALL {
        let key = token
            .generate_key(&format!("key-{algorithm}"), algorithm)
            .await
            .expect("generate");
        assert_eq!(key.algorithm(), algorithm);
        assert_eq!(key.id().len(), 16);
        assert_eq!(
            crate::key_algorithm_of(key.public_key_info()),
            Some(algorithm)
        );
        let msg = format!("kyso signs with {algorithm}").into_bytes();
        let sig = key.sign(&msg).await.expect("sign");
        rustcrypto_verify(&key, &msg, &sig).unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        key.verify(&msg, &sig).expect("own verify");
        // A signature over a different message must not verify.
        assert!(rustcrypto_verify(&key, b"another message", &sig).is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_signs_with_both_paddings_and_every_hash() {
    let token = fresh_token("rsa-paddings");
    let key = token
        .generate_key("rsa", KeyAlgorithm::Rsa2048)
        .await
        .expect("generate");
    let msg = b"Cong hoa xa hoi chu nghia Viet Nam";
    for padding in [RsaPadding::Pkcs1v15, RsaPadding::Pss] {
        for hash in [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ] {
            let key = key.clone().with_rsa_padding(padding).with_hash(hash);
            let sig = key.sign(msg).await.expect("sign");
            assert_eq!(sig.len(), 256);
            rustcrypto_verify(&key, msg, &sig).unwrap_or_else(|e| panic!("{padding} {hash}: {e}"));
            // Through sign_digest (raw mechanisms) as well.
            let sig = key
                .sign_digest(&hash.digest(msg))
                .await
                .expect("sign_digest");
            rustcrypto_verify(&key, msg, &sig)
                .unwrap_or_else(|e| panic!("digest {padding} {hash}: {e}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_without_combined_mechanisms_falls_back_to_raw_ones() {
    let token = fresh_token("rsa-fallback");
    // As on an HSM that offers only the raw RSA mechanisms.
    token.testing_set_mechanisms(vec![MechanismType::RSA_PKCS, MechanismType::RSA_PKCS_PSS]);
    let key = token
        .generate_key("rsa", KeyAlgorithm::Rsa2048)
        .await
        .expect("generate");
    let msg = b"fallback";
    for padding in [RsaPadding::Pkcs1v15, RsaPadding::Pss] {
        let key = key.clone().with_rsa_padding(padding);
        let sig = key.sign(msg).await.expect("sign");
        rustcrypto_verify(&key, msg, &sig).unwrap_or_else(|e| panic!("{padding}: {e}"));
    }
    let ec_only = fresh_token("ec-without-ecdsa");
    ec_only.testing_set_mechanisms(vec![MechanismType::RSA_PKCS]);
    let ec = ec_only
        .generate_key("ec", KeyAlgorithm::EcP256)
        .await
        .expect("generate");
    let err = ec.sign(msg).await.expect_err("no CKM_ECDSA");
    assert_eq!(err.code(), "hsm_mechanism_unsupported");
    assert!(err.to_string().contains("CKM_ECDSA"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec_signs_with_non_default_hashes_and_digests() {
    let token = fresh_token("ec-hashes");
    for algorithm in [KeyAlgorithm::EcP256, KeyAlgorithm::EcP384] {
        let key = token
            .generate_key(&format!("ec-{algorithm}"), algorithm)
            .await
            .expect("generate");
        for hash in [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ] {
            let key = key.clone().with_hash(hash);
            let msg = b"hash choice";
            let sig = key.sign(msg).await.expect("sign");
            rustcrypto_verify(&key, msg, &sig)
                .unwrap_or_else(|e| panic!("{algorithm} {hash}: {e}"));
            let sig = key.sign_digest(&hash.digest(msg)).await.expect("digest");
            rustcrypto_verify(&key, msg, &sig)
                .unwrap_or_else(|e| panic!("digest {algorithm} {hash}: {e}"));
        }
        let err = key.sign_digest(&[0u8; 20]).await.expect_err("short digest");
        assert_eq!(err.code(), "hsm_bad_digest");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lookup_and_label_errors() {
    let token = fresh_token("lookup");
    let key = token
        .generate_key("signer", KeyAlgorithm::EcP256)
        .await
        .expect("generate");
    let found = token.find_key("signer").await.expect("find");
    assert_eq!(found.id(), key.id());
    assert_eq!(found.public_key_info(), key.public_key_info());
    assert_eq!(found.algorithm(), KeyAlgorithm::EcP256);
    let sig = found.sign(b"x").await.expect("sign with found key");
    rustcrypto_verify(&key, b"x", &sig).expect("verify");

    let err = token.find_key("nobody").await.expect_err("unknown key");
    assert_eq!(err.code(), "hsm_key_not_found");
    assert!(
        matches!(&err, HsmError::KeyNotFound { token: t, label } if t == token.label() && label == "nobody")
    );

    let err = token
        .generate_key("signer", KeyAlgorithm::Rsa2048)
        .await
        .expect_err("duplicate");
    assert_eq!(err.code(), "hsm_key_exists");
    assert!(err.to_string().contains("signer"));

    let err = token
        .generate_key("", KeyAlgorithm::EcP256)
        .await
        .expect_err("empty label");
    assert_eq!(err.code(), "hsm_invalid_label");

    token
        .generate_key("other", KeyAlgorithm::Rsa2048)
        .await
        .expect("second key");
    let keys = token.list_keys().await.expect("list");
    let labels: Vec<_> = keys.iter().map(|k| k.label.as_str()).collect();
    assert_eq!(labels, ["other", "signer"]);
    assert_eq!(keys[0].algorithm, Some(KeyAlgorithm::Rsa2048));
    assert_eq!(keys[1].id_hex, hex::encode(key.id()));
    assert!(!keys[1].has_certificate);
}

#[test]
fn wrong_pin_and_unknown_token_are_named_errors() {
    let module = softhsm();
    // A token this process has not logged in to: the token itself refuses the PIN.
    let label = crate::testing::unique_label("pins-fresh");
    module
        .init_token(&label, &Pin::new("5678"), &Pin::new(USER_PIN))
        .expect("init");
    let err = module
        .open_token(&label, Pin::new("0000"), 2)
        .expect_err("wrong pin on a fresh token");
    assert_eq!(err.code(), "hsm_wrong_pin");
    module
        .open_token(&label, Pin::new(USER_PIN), 2)
        .expect("right pin");

    // A token already logged in: the login succeeds at the token, kyso still checks the PIN.
    let token = fresh_token("pins");
    let err = module
        .open_token(token.label(), Pin::new("0000"), 2)
        .expect_err("wrong pin");
    assert_eq!(err.code(), "hsm_wrong_pin");
    assert!(matches!(&err, HsmError::WrongPin { token: t } if t == token.label()));

    let err = module
        .open_token("no-such-token", Pin::new(USER_PIN), 2)
        .expect_err("unknown token");
    assert_eq!(err.code(), "hsm_token_not_found");
    match &err {
        HsmError::TokenNotFound { label, available } => {
            assert_eq!(label, "no-such-token");
            assert!(
                available.iter().any(|l| l == token.label()),
                "{available:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains(token.label()));

    let err = module
        .init_token(token.label(), &Pin::new("5678"), &Pin::new(USER_PIN))
        .expect_err("label in use");
    assert_eq!(err.code(), "hsm_token_exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_sign_concurrently_through_one_token() {
    let token = fresh_token_with_pool("concurrent", 4);
    let ec = token
        .generate_key("ec", KeyAlgorithm::EcP256)
        .await
        .expect("generate");
    let rsa = token
        .generate_key("rsa", KeyAlgorithm::Rsa2048)
        .await
        .expect("generate");
    let mut tasks = Vec::new();
    for task in 0..64 {
        let key = if task % 2 == 0 {
            ec.clone()
        } else {
            rsa.clone()
        };
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..20 {
                let msg = format!("task {task} signature {i}").into_bytes();
                let sig = key.sign(&msg).await.expect("sign");
                out.push((msg, sig));
            }
            (key, out)
        }));
    }
    let mut verified = 0;
    for task in tasks {
        let (key, signatures) = task.await.expect("task");
        for (msg, sig) in signatures {
            rustcrypto_verify(&key, &msg, &sig).expect("verify");
            verified += 1;
        }
    }
    assert_eq!(verified, 64 * 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_is_stored_beside_its_key_and_pkcs11_tool_sees_it() {
    let token = fresh_token("certificate");
    let key = token
        .generate_key("staff-signing", KeyAlgorithm::EcP256)
        .await
        .expect("generate");
    assert_eq!(token.find_certificate(&key).await.expect("find"), None);
    let first = self_signed(&key, "CN=First,O=kyso,C=VN");
    token.store_certificate(&key, &first).await.expect("store");
    assert_eq!(
        token.find_certificate(&key).await.expect("find"),
        Some(first)
    );
    // A renewal replaces the earlier certificate.
    let second = self_signed(&key, "CN=Second,O=kyso,C=VN");
    token.store_certificate(&key, &second).await.expect("store");
    assert_eq!(
        token.find_certificate(&key).await.expect("find"),
        Some(second.clone())
    );
    let keys = token.list_keys().await.expect("list");
    assert!(keys[0].has_certificate);

    // Someone else's certificate is refused.
    let other = token
        .generate_key("other", KeyAlgorithm::EcP256)
        .await
        .expect("generate");
    let err = token
        .store_certificate(&other, &second)
        .await
        .expect_err("mismatch");
    assert_eq!(err.code(), "hsm_bad_certificate");
    let err = token
        .store_certificate(&key, b"not a certificate")
        .await
        .expect_err("garbage");
    assert_eq!(err.code(), "hsm_bad_certificate");

    let output = std::process::Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", softhsm_conf_path())
        .arg("--module")
        .arg(softhsm().path())
        .args(["--token-label", token.label(), "--login", "--pin", USER_PIN])
        .arg("--list-objects")
        .output()
        .expect("run pkcs11-tool");
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{listing}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let id_hex = hex::encode(key.id());
    let certificate = listing
        .split("\n\n")
        .find(|block| block.contains("Certificate Object"))
        .unwrap_or_else(|| panic!("no certificate in:\n{listing}"));
    assert!(
        certificate.contains("label:      staff-signing"),
        "{certificate}"
    );
    assert!(certificate.contains(&id_hex), "{certificate}");
    let private = listing
        .split("\n\n")
        .find(|block| block.contains("Private Key Object") && block.contains("staff-signing"))
        .unwrap_or_else(|| panic!("no private key in:\n{listing}"));
    assert!(private.contains(&id_hex), "{private}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_recovers_after_logout_and_lost_sessions() {
    let token = fresh_token("recovery");
    let key = token
        .generate_key("ca", KeyAlgorithm::EcP256)
        .await
        .expect("generate");
    key.sign(b"before").await.expect("sign");
    assert_eq!(token.rebuild_count(), 0);

    token.testing_log_out().expect("log out");
    let sig = key.sign(b"after logout").await.expect("sign after logout");
    rustcrypto_verify(&key, b"after logout", &sig).expect("verify");
    assert_eq!(token.rebuild_count(), 1);

    token.testing_close_all_sessions();
    let sig = key.sign(b"after close").await.expect("sign after close");
    rustcrypto_verify(&key, b"after close", &sig).expect("verify");
    assert_eq!(token.rebuild_count(), 2);
    // The rebuilt login holds for lookups too.
    token.find_key("ca").await.expect("find after recovery");
    token.testing_close_all_sessions();
    token.find_key("ca").await.expect("find after second loss");
}

/// A self-signed certificate for `key`, built by x509-cert's builder signing through the HSM.
fn self_signed(key: &HsmKey, subject: &str) -> Vec<u8> {
    use std::str::FromStr;
    use x509_cert::builder::{Builder, CertificateBuilder, profile::cabf::Root};
    let name = x509_cert::name::Name::from_str(subject).expect("name");
    let profile = Root::new(false, name).expect("profile");
    let builder = CertificateBuilder::new(
        profile,
        x509_cert::serial_number::SerialNumber::new(&[0x42, 0x01]).expect("serial"),
        fixed_validity(),
        key.public_key_info().clone(),
    )
    .expect("builder");
    let cert = builder.build::<_, HsmSignature>(key).expect("build");
    cert.to_der().expect("der")
}

fn fixed_validity() -> x509_cert::time::Validity {
    use std::time::Duration;
    let not_before =
        der::asn1::UtcTime::from_unix_duration(Duration::from_secs(1_767_225_600)).expect("utc"); // 2026-01-01
    let not_after =
        der::asn1::UtcTime::from_unix_duration(Duration::from_secs(1_893_456_000)).expect("utc"); // 2030-01-01
    x509_cert::time::Validity::new(not_before.into(), not_after.into())
}

fn check_certificate_signature(key: &HsmKey, der: &[u8]) {
    let cert = x509_cert::Certificate::from_der(der).expect("parse");
    assert_eq!(cert.signature_algorithm(), &key.signature_algorithm());
    assert_eq!(
        cert.tbs_certificate().subject_public_key_info(),
        key.public_key_info()
    );
    let tbs = cert.tbs_certificate().to_der().expect("tbs");
    let sig = cert.signature().raw_bytes();
    rustcrypto_verify(key, &tbs, sig).expect("certificate signature verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x509_builder_signs_certificates_with_an_hsm_key() {
    use std::str::FromStr;
    use x509_cert::builder::{AsyncBuilder, CertificateBuilder, profile::cabf::Root};
    let token = fresh_token("x509-builder");
    for (algorithm, padding) in [
        (KeyAlgorithm::EcP256, RsaPadding::Pkcs1v15),
        (KeyAlgorithm::EcP384, RsaPadding::Pkcs1v15),
        (KeyAlgorithm::Rsa2048, RsaPadding::Pkcs1v15),
        (KeyAlgorithm::Rsa2048, RsaPadding::Pss),
    ] {
        let key = token
            .generate_key(&format!("{algorithm}-{padding}"), algorithm)
            .await
            .expect("generate")
            .with_rsa_padding(padding);
        // Blocking builder, as kyso-ca may run it inside spawn_blocking.
        let signer = key.clone();
        let der = tokio::task::spawn_blocking(move || self_signed(&signer, "CN=Root,O=kyso,C=VN"))
            .await
            .expect("blocking build");
        check_certificate_signature(&key, &der);

        // Async builder through the non-blocking signer.
        let name = x509_cert::name::Name::from_str("CN=Async Root,O=kyso,C=VN").expect("name");
        let builder = CertificateBuilder::new(
            Root::new(false, name).expect("profile"),
            x509_cert::serial_number::SerialNumber::new(&[0x07]).expect("serial"),
            fixed_validity(),
            key.public_key_info().clone(),
        )
        .expect("builder");
        let cert = builder
            .build_async::<_, HsmSignature>(&key.async_signer())
            .await
            .expect("build_async");
        check_certificate_signature(&key, &cert.to_der().expect("der"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cms_builder_accepts_an_hsm_key() {
    use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
    use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
    use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
    let token = fresh_token("cms-builder");
    let key = token
        .generate_key("seal", KeyAlgorithm::EcP256)
        .await
        .expect("generate");
    let cert_der = self_signed(&key, "CN=Seal,O=kyso,C=VN");
    let cert = x509_cert::Certificate::from_der(&cert_der).expect("cert");
    let content = EncapsulatedContentInfo {
        econtent_type: const_oid::db::rfc5911::ID_DATA,
        econtent: Some(der::Any::new(der::Tag::OctetString, b"van ban".to_vec()).expect("content")),
    };
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: cert.tbs_certificate().issuer().clone(),
        serial_number: cert.tbs_certificate().serial_number().clone(),
    });
    let digest_algorithm = HashAlgorithm::Sha256.algorithm_identifier();
    let signer_info = SignerInfoBuilder::new(sid.clone(), digest_algorithm.clone(), &content, None)
        .expect("signer info");
    let mut builder = SignedDataBuilder::new(&content);
    builder
        .add_digest_algorithm(digest_algorithm.clone())
        .expect("digest alg")
        .add_certificate(CertificateChoices::Certificate(cert.clone()))
        .expect("cert");
    let signed = builder
        .add_signer_info_async::<_, HsmSignature>(signer_info, &key.async_signer())
        .await
        .expect("sign")
        .build()
        .expect("build");
    let signed_data = signed
        .content
        .decode_as::<cms::signed_data::SignedData>()
        .expect("signed data");
    let info = signed_data.signer_infos.0.get(0).expect("one signer");
    assert_eq!(info.signature_algorithm, key.signature_algorithm());
    let attrs = info
        .signed_attrs
        .as_ref()
        .expect("signed attributes")
        .to_der()
        .expect("der");
    rustcrypto_verify(&key, &attrs, info.signature.as_bytes()).expect("CMS signature verifies");
}

/// More blocking signers than sessions: each waits for a returned session, and every release
/// must wake a waiter (a lost wake-up shows as a timeout here, not as a hung test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_signers_share_a_pool_of_one_session() {
    let token = fresh_token_with_pool("pool-of-one", 1);
    let key = token
        .generate_key("ec", KeyAlgorithm::EcP256)
        .await
        .expect("generate");
    let (done, finished) = std::sync::mpsc::channel();
    for thread in 0..4u8 {
        let key = key.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            for i in 0..25u8 {
                let msg = [thread, i];
                out.push((msg, key.sign_blocking(&msg)));
            }
            let _ = done.send(out);
        });
    }
    drop(done);
    let mut verified = 0;
    for _ in 0..4 {
        let signatures = finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("a signing thread finished (no lost wake-up)");
        for (msg, sig) in signatures {
            rustcrypto_verify(&key, &msg, &sig.expect("sign")).expect("verify");
            verified += 1;
        }
    }
    assert_eq!(verified, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_keys_sign_in_place_and_slow_ones_off_the_worker() {
    let token = fresh_token("placement");
    let key = token
        .generate_key("fast", KeyAlgorithm::EcP256)
        .await
        .expect("generate");
    // The first signature is measured off the worker: nothing is known about the token yet.
    token.set_inline_budget(std::time::Duration::from_secs(1));
    key.sign(b"first").await.expect("sign");
    assert_eq!(token.signing_placement_counts(), (0, 1));
    assert!(key.average_signing_time().is_some());
    // Now known to be fast: in place, and the signatures are still good.
    for i in 0..5u8 {
        let msg = [b'm', i];
        let sig = key.sign(&msg).await.expect("sign in place");
        rustcrypto_verify(&key, &msg, &sig).expect("verify");
    }
    let digest = HashAlgorithm::Sha256.digest(b"digest");
    key.sign_digest(&digest)
        .await
        .expect("sign digest in place");
    assert_eq!(token.signing_placement_counts(), (6, 1));
    // A budget no call can meet sends every call off the worker again.
    token.set_inline_budget(std::time::Duration::ZERO);
    key.sign(b"off").await.expect("sign off the worker");
    assert_eq!(token.signing_placement_counts(), (6, 2));
}

#[tokio::test(flavor = "current_thread")]
async fn in_place_signing_works_on_a_current_thread_runtime() {
    let token = fresh_token("placement-current");
    let key = token
        .generate_key("fast", KeyAlgorithm::EcP256)
        .await
        .expect("generate");
    token.set_inline_budget(std::time::Duration::from_secs(1));
    for i in 0..3u8 {
        let msg = [b'c', i];
        let sig = key.sign(&msg).await.expect("sign");
        rustcrypto_verify(&key, &msg, &sig).expect("verify");
    }
    assert_eq!(token.signing_placement_counts(), (2, 1));
}
