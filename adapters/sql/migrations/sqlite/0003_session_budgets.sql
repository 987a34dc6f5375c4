-- Each session's budget: JSON text of its limits (`maxCostUsd`, `maxTokens`, `maxTurns`),
-- each absent when unlimited. Sessions stored before budgets existed have none.
ALTER TABLE sessions ADD COLUMN budget TEXT NOT NULL DEFAULT '{}';
