// API keys, with the semantics of the runtime's SessionStore contract. Only the hash of a
// key is ever stored.
import { v } from "convex/values";
import type { Doc } from "./docs";
import { fail, internalMutation, internalQuery } from "./server";
import { apiKey } from "./tables";

/** The stored document without Convex's system fields. */
function key(doc: Doc<"agentRuntimeApiKeys">) {
  const { _id, _creationTime, ...fields } = doc;
  void _id;
  void _creationTime;
  return fields;
}

/** Stores a new key; an existing name or hash is a CONFLICT. */
export const create = internalMutation({
  args: { key: apiKey },
  returns: v.null(),
  handler: async (ctx, { key }) => {
    const sameName = await ctx.db
      .query("agentRuntimeApiKeys")
      .withIndex("by_name", (q) => q.eq("name", key.name))
      .unique();
    const sameHash = await ctx.db
      .query("agentRuntimeApiKeys")
      .withIndex("by_keyHash", (q) => q.eq("keyHash", key.keyHash))
      .unique();
    if (sameName !== null || sameHash !== null) {
      fail("CONFLICT", `an API key named ${key.name} or with the same hash exists`);
    }
    await ctx.db.insert("agentRuntimeApiKeys", key);
    return null;
  },
});

/** The key stored with this hash, or null. */
export const byHash = internalQuery({
  args: { keyHash: v.string() },
  returns: v.union(apiKey, v.null()),
  handler: async (ctx, { keyHash }) => {
    const doc = await ctx.db
      .query("agentRuntimeApiKeys")
      .withIndex("by_keyHash", (q) => q.eq("keyHash", keyHash))
      .unique();
    return doc === null ? null : key(doc);
  },
});

/** Every key, ordered by name. */
export const list = internalQuery({
  args: {},
  returns: v.array(apiKey),
  handler: async (ctx) => {
    const docs = await ctx.db.query("agentRuntimeApiKeys").withIndex("by_name").collect();
    return docs.map(key);
  },
});

/** Deletes the key with this name; returns whether it existed. */
export const revoke = internalMutation({
  args: { name: v.string() },
  returns: v.boolean(),
  handler: async (ctx, { name }) => {
    const doc = await ctx.db
      .query("agentRuntimeApiKeys")
      .withIndex("by_name", (q) => q.eq("name", name))
      .unique();
    if (doc === null) return false;
    await ctx.db.delete("agentRuntimeApiKeys", doc._id);
    return true;
  },
});
