-- Just-in-time approvals (DESIGN.md §7). The same logical schema as
-- migrations/postgres/0002_reviews.sql; keep them in step.
--
-- The store keeps rows; what a review means lives in portcullis-reviews. `body` is the
-- review's JSON, `status` mirrors the status inside it so that compare-and-set updates and
-- the indexes below need no JSON parsing.
CREATE TABLE reviews (
    id         TEXT   PRIMARY KEY,
    binding    TEXT   NOT NULL,
    status     TEXT   NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    body       TEXT   NOT NULL
);

-- A request looks for an open review of its exact command.
CREATE INDEX reviews_by_binding ON reviews (binding, status);

-- Listing by status, newest first, and the expiry sweep.
CREATE INDEX reviews_by_status ON reviews (status, created_ms);

-- At most one pending review per binding, even when several gateways receive the same
-- request at once: the losing insert fails with a conflict and its caller reuses the winner.
CREATE UNIQUE INDEX reviews_one_pending ON reviews (binding) WHERE status = 'pending';
