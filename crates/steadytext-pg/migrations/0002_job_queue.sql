-- A durable job queue. All state lives here, so any number of worker processes on any number
-- of machines can share one database, and a killed worker loses nothing: its lease expires and
-- the job becomes claimable again.
--
-- Life of a job:  pending --claim--> leased --complete--> done
--                    ^                  |  \--fail (attempts < max)--> pending (run_at = backoff)
--                    |                  |   \--fail (attempts = max) / permanent error--> steadytext_dead_jobs
--                    +----release-------+
-- A leased job whose lease expired is claimable again (state stays 'leased', new owner).
-- `attempts` counts claims; together with `leased_by` it fences a claim: a worker can only
-- complete / fail / release the claim it holds.

CREATE TABLE IF NOT EXISTS steadytext_jobs (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    payload JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- Jobs with equal (kind, dedupe_key) are merged while pending (e.g. the review id).
    dedupe_key TEXT,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'leased', 'done')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- NULL: the worker's configured maximum.
    max_attempts INTEGER CHECK (max_attempts >= 1),
    run_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    leased_until TIMESTAMPTZ,
    leased_by TEXT,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    CHECK (state <> 'leased' OR (leased_by IS NOT NULL AND leased_until IS NOT NULL))
);

-- At most one pending job per (kind, dedupe_key); a leased or done one does not block a new one.
CREATE UNIQUE INDEX IF NOT EXISTS steadytext_jobs_dedupe
    ON steadytext_jobs (kind, dedupe_key) WHERE state = 'pending';
-- Claiming: ready pending jobs in run_at order, and leases that ran out.
CREATE INDEX IF NOT EXISTS steadytext_jobs_ready
    ON steadytext_jobs (run_at, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS steadytext_jobs_leases
    ON steadytext_jobs (leased_until) WHERE state = 'leased';
-- Purging finished jobs.
CREATE INDEX IF NOT EXISTS steadytext_jobs_finished
    ON steadytext_jobs (finished_at) WHERE state = 'done';

-- Jobs that failed permanently or ran out of attempts, with the error that killed them.
CREATE TABLE IF NOT EXISTS steadytext_dead_jobs (
    id BIGINT PRIMARY KEY, -- the job's id in steadytext_jobs
    kind TEXT NOT NULL,
    payload JSONB NOT NULL,
    dedupe_key TEXT,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER,
    run_at TIMESTAMPTZ NOT NULL,
    leased_by TEXT, -- the last worker that held it
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    died_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS steadytext_dead_jobs_kind ON steadytext_dead_jobs (kind, died_at);

-- Enqueue (or merge into the pending job with the same dedupe key) and notify listeners on
-- channel 'steadytext_jobs' with the kind as payload. The notification is delivered when the
-- enclosing transaction commits. Used by the triggers below and by the Rust `Queue::enqueue`.
CREATE OR REPLACE FUNCTION steadytext_enqueue_job(
    p_kind TEXT,
    p_payload JSONB,
    p_dedupe_key TEXT DEFAULT NULL,
    p_max_attempts INTEGER DEFAULT NULL,
    p_run_at TIMESTAMPTZ DEFAULT NULL,
    OUT job_id BIGINT,
    OUT inserted BOOLEAN
) LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO steadytext_jobs AS j (kind, payload, dedupe_key, max_attempts, run_at)
    VALUES (p_kind, COALESCE(p_payload, '{}'::jsonb), p_dedupe_key, p_max_attempts,
            COALESCE(p_run_at, now()))
    ON CONFLICT (kind, dedupe_key) WHERE state = 'pending'
    DO UPDATE SET payload = EXCLUDED.payload,
                  run_at = LEAST(j.run_at, EXCLUDED.run_at),
                  max_attempts = COALESCE(EXCLUDED.max_attempts, j.max_attempts),
                  updated_at = now()
    RETURNING j.id, (j.xmax = 0) INTO job_id, inserted;
    PERFORM pg_notify('steadytext_jobs', p_kind);
END;
$$;

-- Real-time analysis: inserting (or re-wording / re-rating) a review, or inserting a ticket,
-- enqueues an analysis job in the same transaction. The insert never waits on a model.
CREATE OR REPLACE FUNCTION steadytext_enqueue_review_analysis()
RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM steadytext_enqueue_job('analyze_review', jsonb_build_object('id', NEW.id), NEW.id::text);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION steadytext_enqueue_ticket_analysis()
RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM steadytext_enqueue_job('analyze_ticket', jsonb_build_object('id', NEW.id), NEW.id::text);
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS steadytext_review_inserted ON product_reviews;
CREATE TRIGGER steadytext_review_inserted
    AFTER INSERT ON product_reviews
    FOR EACH ROW EXECUTE FUNCTION steadytext_enqueue_review_analysis();

DROP TRIGGER IF EXISTS steadytext_review_changed ON product_reviews;
CREATE TRIGGER steadytext_review_changed
    AFTER UPDATE OF review_text, rating ON product_reviews
    FOR EACH ROW
    WHEN (OLD.review_text IS DISTINCT FROM NEW.review_text OR OLD.rating IS DISTINCT FROM NEW.rating)
    EXECUTE FUNCTION steadytext_enqueue_review_analysis();

DROP TRIGGER IF EXISTS steadytext_ticket_inserted ON support_tickets;
CREATE TRIGGER steadytext_ticket_inserted
    AFTER INSERT ON support_tickets
    FOR EACH ROW EXECUTE FUNCTION steadytext_enqueue_ticket_analysis();
