// The schema of a deployment that serves only agent-runtime. An application with its own
// schema adds `...agentRuntimeTables` to its `defineSchema` call instead.
import { defineSchema } from "convex/server";
import { agentRuntimeTables } from "./agentRuntime/tables";

export default defineSchema({ ...agentRuntimeTables });
