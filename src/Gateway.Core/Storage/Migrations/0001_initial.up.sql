-- 0001_initial: models, their backends, and API keys (the seed's schema).
CREATE TABLE models (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text        NOT NULL UNIQUE CHECK (name <> ''),
    model_id         text        NOT NULL CHECK (model_id <> ''),
    active           boolean     NOT NULL DEFAULT true,
    default_params   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    reasoning_config jsonb       NOT NULL DEFAULT '{}'::jsonb,
    transforms       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    rate_limits      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX models_active_idx ON models (name) WHERE active;

CREATE TABLE model_backends (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id          uuid        NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    url               text        NOT NULL CHECK (url <> ''),
    weight            integer     NOT NULL DEFAULT 1 CHECK (weight > 0),
    active            boolean     NOT NULL DEFAULT true,
    healthy           boolean     NOT NULL DEFAULT true,
    last_health_check timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model_id, url)
);
CREATE INDEX model_backends_active_idx ON model_backends (model_id) WHERE active;

CREATE TABLE api_keys (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    key_hash       text        NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    key_prefix     text        NOT NULL,
    name           text        NOT NULL CHECK (name <> ''),
    active         boolean     NOT NULL DEFAULT true,
    rpm_limit      bigint      CHECK (rpm_limit IS NULL OR rpm_limit > 0),
    tpm_limit      bigint      CHECK (tpm_limit IS NULL OR tpm_limit > 0),
    allowed_models text[]      NOT NULL DEFAULT '{}',
    expires_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz
);
CREATE INDEX api_keys_active_idx ON api_keys (key_hash) WHERE active;
