// Agent profiles stored as documents: the manifest text and every other file, base64.
// A profile document must stay under Convex's 1 MiB document limit.
import { v } from "convex/values";
import { internalMutation, internalQuery } from "./server";
import { profile } from "./tables";

/** Every profile name, sorted. */
export const list = internalQuery({
  args: {},
  returns: v.array(v.string()),
  handler: async (ctx) => {
    const names: string[] = [];
    for await (const doc of ctx.db.query("agentRuntimeProfiles").withIndex("by_name")) {
      if (names[names.length - 1] !== doc.name) names.push(doc.name);
    }
    return names;
  },
});

/** The profile with this name, or null. */
export const get = internalQuery({
  args: { name: v.string() },
  returns: v.union(profile, v.null()),
  handler: async (ctx, { name }) => {
    const doc = await ctx.db
      .query("agentRuntimeProfiles")
      .withIndex("by_name", (q) => q.eq("name", name))
      .first();
    if (doc === null) return null;
    return { name: doc.name, manifest: doc.manifest, files: doc.files };
  },
});

/** Stores a profile, replacing the one with the same name. */
export const put = internalMutation({
  args: { profile },
  returns: v.null(),
  handler: async (ctx, { profile }) => {
    const doc = await ctx.db
      .query("agentRuntimeProfiles")
      .withIndex("by_name", (q) => q.eq("name", profile.name))
      .first();
    if (doc === null) await ctx.db.insert("agentRuntimeProfiles", profile);
    else await ctx.db.replace("agentRuntimeProfiles", doc._id, profile);
    return null;
  },
});

/** Deletes the profile with this name; a missing name is fine. */
export const remove = internalMutation({
  args: { name: v.string() },
  returns: v.null(),
  handler: async (ctx, { name }) => {
    const doc = await ctx.db
      .query("agentRuntimeProfiles")
      .withIndex("by_name", (q) => q.eq("name", name))
      .first();
    if (doc !== null) await ctx.db.delete("agentRuntimeProfiles", doc._id);
    return null;
  },
});
