// A non-Python client: submit a design to the coordinator over gRPC and read it back.
// usage: node client.js ADDRESS TOKEN EXPERIMENT DESIGN_FILE PROTO_ROOT
const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const loader = require("@grpc/proto-loader");

const [address, token, experiment, designFile, protoRoot] = process.argv.slice(2);
const definition = loader.loadSync(path.join(protoRoot, "genesys/v1/evolution.proto"), {
  includeDirs: [protoRoot], keepCase: true, longs: String, enums: String, defaults: true,
});
const v1 = grpc.loadPackageDefinition(definition).genesys.v1;
const client = new v1.EvolutionService(address, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
metadata.add("authorization", `Bearer ${token}`);

function call(method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: Date.now() + 30000 }, (err, reply) =>
      err ? reject(err) : resolve(reply));
  });
}

(async () => {
  const source = fs.readFileSync(designFile, "utf8");
  const submitted = await call("SubmitDesign", { experiment, name: "from-node", source });
  const read = await call("GetDesign", { id: submitted.design.id, view: "DESIGN_VIEW_FULL" });
  let duplicate = "";
  try {
    await call("SubmitDesign", { experiment, source });
  } catch (err) {
    duplicate = `${err.code} ${err.details}`;
  }
  const d = read.design;
  console.log(JSON.stringify({ id: d.id, name: d.name, digest: d.digest, root: d.tree.root,
    units: d.tree.units.map((u) => u.name), state: d.state, duplicate }));
})().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
