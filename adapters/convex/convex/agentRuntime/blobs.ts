// Blobs in Convex file storage, indexed by key in `agentRuntimeBlobs`, with the semantics
// of the runtime's BlobStore contract. Upload: `generateUploadUrl`, POST the bytes to the
// URL, then `commit` the returned storage id under its key.
import { v } from "convex/values";
import type { GenericMutationCtx } from "convex/server";
import { type DataModel, fail, internalMutation, internalQuery, pageSize } from "./server";

/** The largest code point: `prefix + MAX_CHAR` sorts after every key starting with `prefix`. */
const MAX_CHAR = "\u{10FFFF}";

/** Deleting a file is a storage call too, so prefix deletes go in smaller steps. */
const DELETE_STEP = 256;

const blobMeta = v.object({ key: v.string(), size: v.number(), modifiedAt: v.number() });

/** A fresh upload URL, valid for an hour. */
export const generateUploadUrl = internalMutation({
  args: {},
  returns: v.string(),
  handler: async (ctx) => await ctx.storage.generateUploadUrl(),
});

/**
 * Records an uploaded file under `key`, replacing (and deleting) the file stored there
 * before. An unknown storage id is NOT_FOUND; a size that differs from the stored file's
 * is INVALID_INPUT.
 */
export const commit = internalMutation({
  args: { key: v.string(), storageId: v.id("_storage"), size: v.number() },
  returns: v.null(),
  handler: async (ctx, { key, storageId, size }) => {
    const file = await ctx.db.system.get("_storage", storageId);
    if (file === null) fail("NOT_FOUND", `storage file ${storageId}`);
    if (file.size !== size) {
      fail("INVALID_INPUT", `storage file ${storageId} holds ${file.size} bytes, not ${size}`);
    }
    const modifiedAt = Date.now();
    const existing = await byKey(ctx, key);
    if (existing === null) {
      await ctx.db.insert("agentRuntimeBlobs", { key, storageId, size, modifiedAt });
      return null;
    }
    if (existing.storageId !== storageId) await ctx.storage.delete(existing.storageId);
    await ctx.db.patch("agentRuntimeBlobs", existing._id, { storageId, size, modifiedAt });
    return null;
  },
});

/** Where to download the blob under `key`, or null. */
export const get = internalQuery({
  args: { key: v.string() },
  returns: v.union(
    v.object({
      storageId: v.id("_storage"),
      size: v.number(),
      modifiedAt: v.number(),
      url: v.union(v.string(), v.null()),
    }),
    v.null(),
  ),
  handler: async (ctx, { key }) => {
    const doc = await ctx.db
      .query("agentRuntimeBlobs")
      .withIndex("by_key", (q) => q.eq("key", key))
      .unique();
    if (doc === null) return null;
    const url = await ctx.storage.getUrl(doc.storageId);
    return { storageId: doc.storageId, size: doc.size, modifiedAt: doc.modifiedAt, url };
  },
});

/** One page of the blobs whose key starts with `prefix` and sorts after `after`, by key. */
export const list = internalQuery({
  args: { prefix: v.string(), after: v.union(v.string(), v.null()), limit: v.number() },
  returns: v.object({ blobs: v.array(blobMeta), isDone: v.boolean() }),
  handler: async (ctx, { prefix, after, limit }) => {
    const size = pageSize(limit);
    const docs = await ctx.db
      .query("agentRuntimeBlobs")
      .withIndex("by_key", (q) =>
        (after === null || after < prefix ? q.gte("key", prefix) : q.gt("key", after)).lt(
          "key",
          prefix + MAX_CHAR,
        ),
      )
      .take(size + 1);
    const blobs = docs
      .slice(0, size)
      .filter((d) => d.key.startsWith(prefix))
      .map((d) => ({ key: d.key, size: d.size, modifiedAt: d.modifiedAt }));
    return { blobs, isDone: docs.length <= size };
  },
});

/** Deletes the blob under exactly `key`; a missing key is fine. */
export const remove = internalMutation({
  args: { key: v.string() },
  returns: v.null(),
  handler: async (ctx, { key }) => {
    const doc = await byKey(ctx, key);
    if (doc !== null) {
      await ctx.storage.delete(doc.storageId);
      await ctx.db.delete("agentRuntimeBlobs", doc._id);
    }
    return null;
  },
});

/**
 * Deletes up to a step of the blobs under `prefix`; `done` is true when none are left.
 * The caller repeats until then.
 */
export const removePrefix = internalMutation({
  args: { prefix: v.string() },
  returns: v.object({ done: v.boolean() }),
  handler: async (ctx, { prefix }) => {
    const docs = await ctx.db
      .query("agentRuntimeBlobs")
      .withIndex("by_key", (q) => q.gte("key", prefix).lt("key", prefix + MAX_CHAR))
      .take(DELETE_STEP + 1);
    for (const doc of docs.slice(0, DELETE_STEP)) {
      if (!doc.key.startsWith(prefix)) continue;
      await ctx.storage.delete(doc.storageId);
      await ctx.db.delete("agentRuntimeBlobs", doc._id);
    }
    return { done: docs.length <= DELETE_STEP };
  },
});

async function byKey(ctx: GenericMutationCtx<DataModel>, key: string) {
  return await ctx.db
    .query("agentRuntimeBlobs")
    .withIndex("by_key", (q) => q.eq("key", key))
    .unique();
}
