# secret-zero: policy of whoever seals documents (`secret-zero seal`): an operator or
# a pipeline.
#
# Written for Transit mount "transit" and key "shop-app": setup.sh rewrites both.

# Encrypt a document into a ciphertext.
path "transit/encrypt/shop-app" {
  capabilities = ["update"]
}

# Verify the round trip (seal's default). Drop this block for an encrypt-only sealer
# and run `seal --no-verify`.
path "transit/decrypt/shop-app" {
  capabilities = ["update"]
}

# Read the key's settings (derived or not, latest version): metadata, no key material.
path "transit/keys/shop-app" {
  capabilities = ["read"]
}
