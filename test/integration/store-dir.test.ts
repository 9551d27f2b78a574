import { storeSuite } from "./store-suite.ts";

// The store's acceptance tests on the default backend: blobs in a directory.
storeSuite("the dir backend", () => ({ type: "dir" }));
