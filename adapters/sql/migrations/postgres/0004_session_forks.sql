-- Where a forked session came from: `{ sessionId, seq, agentSessionId? }`; NULL for a
-- session that was created, and for sessions stored before forks existed.
ALTER TABLE sessions ADD COLUMN forked_from JSONB;
