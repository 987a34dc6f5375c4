// Typed function builders over this schema, written by hand so that the functions
// type-check without `convex codegen` (which needs a deployment). They are what
// `_generated/server.ts` would export.
import {
  type DataModelFromSchemaDefinition,
  type MutationBuilder,
  type QueryBuilder,
  internalMutationGeneric,
  internalQueryGeneric,
} from "convex/server";
import { ConvexError } from "convex/values";
import type schema from "../schema";

export type DataModel = DataModelFromSchemaDefinition<typeof schema>;

// Internal functions: only a deploy key can call them, which is how the runtime calls.
export const internalQuery = internalQueryGeneric as QueryBuilder<DataModel, "internal">;
export const internalMutation = internalMutationGeneric as MutationBuilder<
  DataModel,
  "internal"
>;

/** The error codes the Rust adapter maps to its error kinds. */
export type ErrorCode = "NOT_FOUND" | "CONFLICT" | "INVALID_INPUT";

/** Throws an application error the adapter recognises by `data.code`. */
export function fail(code: ErrorCode, message: string): never {
  throw new ConvexError({ code, message });
}

/** The most documents one call reads or writes, far below Convex's transaction limits. */
export const MAX_PAGE = 1000;

/** Clamps a caller's page size to 1..=MAX_PAGE. */
export function pageSize(limit: number): number {
  if (!Number.isFinite(limit)) return MAX_PAGE;
  return Math.min(Math.max(Math.floor(limit), 1), MAX_PAGE);
}
