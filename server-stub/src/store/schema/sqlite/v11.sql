-- Sleutel server schema, version 11: whether a device key lives in secure hardware.

-- The phone's statement at activation that its keystore keeps the device key in secure
-- hardware (StrongBox, TEE, Secure Enclave). Not an attestation: the ID token passes it on as
-- `hwk` rather than `swk` in `amr`. 0 for devices activated before this version.
ALTER TABLE devices ADD COLUMN key_in_hardware INTEGER NOT NULL DEFAULT 0
    CHECK (key_in_hardware IN (0, 1));

-- The same statement of the device that approved a request, copied when the approval is
-- recorded, so the ID token describes the key that signed even if the device is revoked or
-- replaced before the relying party picks the token up. NULL until approved.
ALTER TABLE action_requests ADD COLUMN device_key_in_hardware INTEGER
    CHECK (device_key_in_hardware IN (0, 1));
