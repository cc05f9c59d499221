/**
 * The model kinds' round halves, loaded with the sync code on a device's first round (the
 * tracking core keeps only `assignSegment`).
 */
export { contributeKMeans } from "../models/kmeans";
