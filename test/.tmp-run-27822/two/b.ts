export { default } from "../../../specs/conformance/refpin.ts";
