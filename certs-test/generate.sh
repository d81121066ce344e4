#!/usr/bin/env bash
# Regenerates kyso's committed test PKI material with the real openssl binary.
#
# These are peers' artefacts (requests and keys a staff member or another CA would bring), never kyso's
# own keys: kyso's keys live only in SoftHSM. Tests read the files in place; rerun this script to rebuild
# them (outputs differ each run because keys and signatures are random).
set -euo pipefail
cd "$(dirname "$0")"
umask 022

rm -rf csr external
mkdir -p csr/keys external

staff_subj='/C=VN/ST=Quảng Ngãi/L=Quảng Ngãi/O=ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI/OU=SỞ THÔNG TIN VÀ TRUYỀN THÔNG/CN=Nguyễn Văn An/UID=CCCD:051212345645/emailAddress=annv@quangngai.gov.vn'
seal_subj='/C=VN/ST=Đà Nẵng/O=ỦY BAN NHÂN DÂN THÀNH PHỐ ĐÀ NẴNG/CN=SỞ Y TẾ/UID=MST:0400260612/UID=MNS:1047665'

# Good requests, one per key type kyso accepts.
req() { # name keyopts digest subject [extra openssl req options...]
  local name=$1 keyopts=$2 digest=$3 subj=$4; shift 4
  # shellcheck disable=SC2086
  openssl genpkey $keyopts -out "csr/keys/$name.key.pem" 2>/dev/null
  openssl req -new -utf8 -key "csr/keys/$name.key.pem" -"$digest" -subj "$subj" -multivalue-rdn "$@" \
    -out "csr/$name.csr.pem"
  openssl req -in "csr/$name.csr.pem" -outform DER -out "csr/$name.csr.der"
}
req p256 "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" sha256 "$staff_subj"
req p384 "-algorithm EC -pkeyopt ec_paramgen_curve:P-384" sha384 "$seal_subj"
req rsa2048 "-algorithm RSA -pkeyopt rsa_keygen_bits:2048" sha256 "$staff_subj"
req rsa3072-pss "-algorithm RSA -pkeyopt rsa_keygen_bits:3072" sha256 "$staff_subj" \
  -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256

# Requests kyso must refuse.
req weak-rsa1024 "-algorithm RSA -pkeyopt rsa_keygen_bits:1024" sha256 "$staff_subj"
req sha1-rsa2048 "-algorithm RSA -pkeyopt rsa_keygen_bits:2048" sha1 "$staff_subj"
req p521 "-algorithm EC -pkeyopt ec_paramgen_curve:P-521" sha512 "$staff_subj"
# A valid P-256 request whose signature no longer matches: flip one bit in the last byte of the DER.
cp csr/p256.csr.der csr/tampered-p256.csr.der
python3 - <<'PY'
import pathlib
p = pathlib.Path("csr/tampered-p256.csr.der")
b = bytearray(p.read_bytes())
b[-1] ^= 0x01
p.write_bytes(bytes(b))
PY
# A request with trailing bytes after the DER.
{ cat csr/p256.csr.der; printf 'trailing'; } > csr/trailing-garbage.csr.der
# Something that is not a request at all.
printf -- '-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgcmVxdWVzdA==\n-----END CERTIFICATE REQUEST-----\n' > csr/not-a-csr.pem

# An outside CA hierarchy built by openssl (for verifying what other CAs issue, and for negative tests:
# a chain that does not lead to kyso's roots).
cat > external/ext.cnf <<'CNF'
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out external/root.key.pem 2>/dev/null
openssl req -new -x509 -utf8 -key external/root.key.pem -sha384 -days 7300 \
  -subj '/C=VN/O=Outside Test CA/CN=Outside Test Root' -set_serial 0x01 \
  -addext 'basicConstraints=critical,CA:true' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
  -out external/root.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out external/leaf.key.pem 2>/dev/null
openssl req -new -utf8 -key external/leaf.key.pem -subj '/C=VN/O=Outside Test CA/CN=Trần Thị Bình' \
  -out external/leaf.csr.pem
openssl x509 -req -in external/leaf.csr.pem -CA external/root.pem -CAkey external/root.key.pem \
  -set_serial 0x1001 -days 3650 -sha256 -extfile external/ext.cnf -extensions leaf -out external/leaf.pem 2>/dev/null
rm external/leaf.csr.pem
echo "test PKI written under $(pwd)"
