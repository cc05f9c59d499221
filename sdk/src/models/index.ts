/** `@fedprofile/sdk/models`: the device halves of the model kinds (pure; no storage, no network). */
export { assignSegment, contributeKMeans, type KMeansCentroids, type SegmentAssignment } from "./kmeans";
