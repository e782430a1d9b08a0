# Vault/OpenBao policy for `secret-zero rotate` (the rotation CronJob).
#
# Least privilege: rotate a key, rewrap ciphertexts inside Vault, read the key's
# versions, retire and trim old versions. No decrypt, no encrypt, no export, no key
# creation or deletion: the rotator never sees a plaintext and cannot make one.
#
# manifests/vault/setup.sh writes it as policy KEY-rotator (shop-app-rotator for its
# default key), with the key's name in place of `+`, and gives it to the rotator's
# role. By hand, the same:
#
#   sed 's#/+#/shop-app#g' manifests/vault/rotator.hcl | bao policy write shop-app-rotator -
#
# As written, `+` matches any one key name on the `transit` mount; for another mount,
# change `transit/`.

# Read the key's versions (latest, min_decryption_version...). No key material.
path "transit/keys/+" {
  capabilities = ["read"]
}

# A new latest version.
path "transit/keys/+/rotate" {
  capabilities = ["update"]
}

# Rewrap (single and batch_input): the plaintext never leaves Vault.
path "transit/rewrap/+" {
  capabilities = ["update"]
}

# --retire: raise the minimum versions, and nothing else (not exportable,
# deletion_allowed or auto-rotation).
path "transit/keys/+/config" {
  capabilities = ["update"]
  allowed_parameters = {
    "min_decryption_version" = []
    "min_encryption_version" = []
  }
}

# --trim: delete the retired versions for good.
path "transit/keys/+/trim" {
  capabilities = ["update"]
  allowed_parameters = {
    "min_available_version" = []
  }
}
