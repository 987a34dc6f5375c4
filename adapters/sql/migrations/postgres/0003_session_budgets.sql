-- Each session's budget: its limits (`maxCostUsd`, `maxTokens`, `maxTurns`), each absent
-- when unlimited. Sessions stored before budgets existed have none.
ALTER TABLE sessions ADD COLUMN budget JSONB NOT NULL DEFAULT '{}'::jsonb;
