//! Optional trust bundles of Vietnam's public PKI, compiled into the binary (no network or files
//! at validation time), each certificate pinned by its SHA-256 fingerprint.
//!
//! - [`VN_NATIONAL`]: the national roots of NEAC (Vietnam National Root CA G2 2014 and G3 2024, the
//!   2025 TSA root, and the SHA-1 MIC National Root CA 2008, still within its validity and on real
//!   documents), with the public CAs issued under them as intermediates for path building.
//! - [`VN_GOVERNMENT`]: the Government specialised roots of Ban Cơ yếu Chính phủ (RootCA G2 2018,
//!   and the SHA-1 G1 2010 root valid to 2030) with their CAs for State and Party bodies.
//!
//! SHA-1-signed roots are accepted only as anchors of their own hierarchy (`allow_sha1`), and every
//! report under them says so. The certificates come from `../shared/testdata/vn-pki/` (public
//! certificates; their fingerprints are listed there); the NEAC TEST roots are deliberately absent.

use crate::{AnchorError, AnchorInfo, TrustAnchors};

/// How a bundle certificate is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleRole {
    /// A trust anchor.
    Anchor,
    /// A CA certificate for path building, trusted only through an anchor.
    Intermediate,
}

/// One certificate of a bundle.
#[derive(Debug, Clone, Copy)]
pub struct BundleCertificate {
    pub file: &'static str,
    pub der: &'static [u8],
    /// Expected SHA-256 fingerprint (hex).
    pub sha256: &'static str,
    pub role: BundleRole,
    /// The anchor may anchor SHA-1-signed chains.
    pub allow_sha1: bool,
}

/// A named set of anchors and intermediates a deployment turns on.
#[derive(Debug, Clone, Copy)]
pub struct Bundle {
    pub name: &'static str,
    pub certificates: &'static [BundleCertificate],
}

/// NEAC's national roots and the public CAs under them.
pub const VN_NATIONAL: Bundle = Bundle {
    name: "vn-national",
    certificates: &[
        BundleCertificate {
            file: "neac-vietnam-national-root-ca-2014-sha256-g2.der",
            der: include_bytes!(
                "../bundles/vn-national/neac-vietnam-national-root-ca-2014-sha256-g2.der"
            ),
            sha256: "BAC8BF609AB420A8EE1780D74F4DE5C7F7184959D2A7375B0A75E4C29F0908E7",
            role: BundleRole::Anchor,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "neac-vietnam-national-root-ca-g3-2024.der",
            der: include_bytes!("../bundles/vn-national/neac-vietnam-national-root-ca-g3-2024.der"),
            sha256: "7B3269E7D79AEBBFAE5095F45BBB7074771E690CB7DF02B441062B12F7690ECE",
            role: BundleRole::Anchor,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "neac-vietnam-national-root-ca-tsa-2025.der",
            der: include_bytes!(
                "../bundles/vn-national/neac-vietnam-national-root-ca-tsa-2025.der"
            ),
            sha256: "D343B3C5132F7D1676C3560025AEFEF036FCEEC073C33F18E075B3A21C8F8552",
            role: BundleRole::Anchor,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "neac-mic-national-root-ca-2008-sha1.der",
            der: include_bytes!("../bundles/vn-national/neac-mic-national-root-ca-2008-sha1.der"),
            sha256: "CA918D635BB130BEC97639E6AABF7EDBC4EB1310F8058B9419F467AE0230AD8C",
            role: BundleRole::Anchor,
            allow_sha1: true,
        },
        BundleCertificate {
            file: "easyca-2020.der",
            der: include_bytes!("../bundles/vn-national/easyca-2020.der"),
            sha256: "226FF88E9B3BC23BC756425E6A5236895F04AD72FB48D1A3242F4389259CE487",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "misa-ca-2019.der",
            der: include_bytes!("../bundles/vn-national/misa-ca-2019.der"),
            sha256: "C8B3186A611DD6A9445924CDC6A950D1592777935310983E6E56861AC8C92337",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "trustca-qualified-timestamping-ca-2021.der",
            der: include_bytes!(
                "../bundles/vn-national/trustca-qualified-timestamping-ca-2021.der"
            ),
            sha256: "B5D2F64C02173E19C722FD27096EDE0F394E76A416367E8A9A0BAE582C0FF0A0",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "viettel-ca-rs-2022.der",
            der: include_bytes!("../bundles/vn-national/viettel-ca-rs-2022.der"),
            sha256: "860BCBE22FDC6757FE03B4597F7C61CA7F36E13CEB74A78CBEFC9C5B267B8662",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "vnpt-ca-sha2-2024.der",
            der: include_bytes!("../bundles/vn-national/vnpt-ca-sha2-2024.der"),
            sha256: "7D6BA5245317F9ED5D8BC765A4634D26AC6340D36B9F584DF3B52D9C4A81A306",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "mic-bkavca-sha1.der",
            der: include_bytes!("../bundles/vn-national/mic-bkavca-sha1.der"),
            sha256: "DDAB3AA11600215C08CA4CCBC18BE5204C171A48081A6CD73A95AA868E1258AF",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "mic-ca2-sha1.der",
            der: include_bytes!("../bundles/vn-national/mic-ca2-sha1.der"),
            sha256: "22A088DEDD18B017409157CCDCE931236492DF259459E7FAC424574DD06380E2",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "mic-fptca-sha1.der",
            der: include_bytes!("../bundles/vn-national/mic-fptca-sha1.der"),
            sha256: "406BA8BE66EAD6D01672F1E137CC35A778E2F289EDD3F9E7580964190B83C761",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "mic-newtelca-sha1.der",
            der: include_bytes!("../bundles/vn-national/mic-newtelca-sha1.der"),
            sha256: "27AB09408347EE182186D2A21E82FEDA0A4E0F84441525BA1DE74A7E87401EBA",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "mic-safeca-sha1.der",
            der: include_bytes!("../bundles/vn-national/mic-safeca-sha1.der"),
            sha256: "4E66E0073C9C217DBFA80697B0096FA61D71C1F32B29A12C2E2C37C0CAC35881",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "mic-smartsign-sha1.der",
            der: include_bytes!("../bundles/vn-national/mic-smartsign-sha1.der"),
            sha256: "591E6796472780FCF98D2E6797C8249457726DEE54A264307D9B51193CDBD5FD",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "mic-viettelca-sha1.der",
            der: include_bytes!("../bundles/vn-national/mic-viettelca-sha1.der"),
            sha256: "684CAF190176D13158808EF193B2D20575399A87FD9E8C5BEDC09065A184841A",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "mic-vnptca-sha1.der",
            der: include_bytes!("../bundles/vn-national/mic-vnptca-sha1.der"),
            sha256: "068927B4C1A38AE4DB1E8F59A71A8C643D9DFBB53A674862387BD5AA7386247B",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
    ],
};

/// The Government specialised CA (Ban Cơ yếu Chính phủ), G1 and G2.
pub const VN_GOVERNMENT: Bundle = Bundle {
    name: "vn-government",
    certificates: &[
        BundleCertificate {
            file: "vgca-rootca-g2-2018-sha256.der",
            der: include_bytes!("../bundles/vn-government/vgca-rootca-g2-2018-sha256.der"),
            sha256: "F04BA4B459A7C9A1B971AD9B1CB833E695A80C79AEA63B174B66A70EDFE2FDB8",
            role: BundleRole::Anchor,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "vgca-rootca-g1-2010-sha1.der",
            der: include_bytes!("../bundles/vn-government/vgca-rootca-g1-2010-sha1.der"),
            sha256: "F7BC89054CEC7F12730D7B8CD3EB7955B163835087E5EB873EDFB584763B3F90",
            role: BundleRole::Anchor,
            allow_sha1: true,
        },
        BundleCertificate {
            file: "vgca-g2-cpcag2-ca-phuc-vu-co-quan-nha-nuoc.der",
            der: include_bytes!(
                "../bundles/vn-government/vgca-g2-cpcag2-ca-phuc-vu-co-quan-nha-nuoc.der"
            ),
            sha256: "D8CAB7A4AEF92E6BB2509D7C61CEE7B44F3731B2D21074963530277B366FAE4B",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "vgca-g2-dcscag2-ca-phuc-vu-co-quan-dang.der",
            der: include_bytes!(
                "../bundles/vn-government/vgca-g2-dcscag2-ca-phuc-vu-co-quan-dang.der"
            ),
            sha256: "E4B402E3CB4CACC0A20D21FA49BCE76BEB4EB47BA7FFB7A8F71C554DBE561A81",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "vgca-g1-bca.der",
            der: include_bytes!("../bundles/vn-government/vgca-g1-bca.der"),
            sha256: "ECBF8428266C549EB1BFDC2715270D5B9DFF3BBBE2D3F0C33E0FD91F70B2D943",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "vgca-g1-bng.der",
            der: include_bytes!("../bundles/vn-government/vgca-g1-bng.der"),
            sha256: "3C4281296F92D292CC952295FE41AD7D0B37438FF1D143B56C4642CC1B14BD93",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "vgca-g1-btc.der",
            der: include_bytes!("../bundles/vn-government/vgca-g1-btc.der"),
            sha256: "A262CFA489DBBE666F8B89FAB832547809874D5A06FA9F7A38FC227EBDF40514",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "vgca-g1-cp.der",
            der: include_bytes!("../bundles/vn-government/vgca-g1-cp.der"),
            sha256: "75E969C07BA35C29C72BBC1BFB880F20F3891A619B00B77EB02CA6160736A1FE",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
        BundleCertificate {
            file: "vgca-g1-dcs.der",
            der: include_bytes!("../bundles/vn-government/vgca-g1-dcs.der"),
            sha256: "6E218B3EBC2F31B0D03205C64FD7E8920FB47187D37AFCDB4CB2BB4178BF4635",
            role: BundleRole::Intermediate,
            allow_sha1: false,
        },
    ],
};

/// Every bundle, by name.
pub const BUNDLES: &[Bundle] = &[VN_NATIONAL, VN_GOVERNMENT];

/// A bundle by its name (`vn-national`, `vn-government`).
pub fn bundle(name: &str) -> Option<&'static Bundle> {
    BUNDLES.iter().find(|b| b.name == name)
}

impl TrustAnchors {
    /// Adds a bundle: its anchors (each checked against its pin) and its intermediates (also
    /// pinned: a bundle certificate that does not match its fingerprint is refused).
    pub fn add_bundle(&mut self, bundle: &Bundle) -> Result<Vec<AnchorInfo>, AnchorError> {
        let mut anchors = Vec::new();
        for cert in bundle.certificates {
            let label = format!("{}/{}", bundle.name, cert.file);
            match cert.role {
                BundleRole::Anchor => {
                    anchors.push(self.add_anchor_der(
                        cert.der,
                        &label,
                        Some(cert.sha256),
                        cert.allow_sha1,
                    )?);
                }
                BundleRole::Intermediate => {
                    let actual = crate::sha256_fingerprint(cert.der);
                    if !actual.eq_ignore_ascii_case(cert.sha256) {
                        return Err(AnchorError::FingerprintMismatch {
                            source_name: label,
                            expected: cert.sha256.to_owned(),
                            actual,
                        });
                    }
                    self.add_intermediate_der(cert.der, &label)?;
                }
            }
        }
        Ok(anchors)
    }
}

#[cfg(test)]
mod tests;
