// Document types of this schema, as `_generated/dataModel.d.ts` would export them.
import type { DocumentByName, TableNamesInDataModel } from "convex/server";
import type { DataModel } from "./server";

export type TableNames = TableNamesInDataModel<DataModel>;
export type Doc<T extends TableNames> = DocumentByName<DataModel, T>;
