// The JavaScript SDK against alice_py's /v1/responses: create, previous_response_id, stream.
// Prints one JSON line the Python test checks.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: process.env.API_KEY, maxRetries: 0 });
const first = await client.responses.create({ model: "gpt-4o-mini", input: "Hello from JS" });
const second = await client.responses.create({
  model: "gpt-4o-mini",
  input: "Second turn",
  previous_response_id: first.id,
});
const stream = await client.responses.create({
  model: "gpt-4o-mini",
  input: "Streamed turn",
  previous_response_id: second.id,
  stream: true,
});
const types = [];
const sequence = [];
let completed = null;
for await (const event of stream) {
  types.push(event.type);
  sequence.push(event.sequence_number);
  if (event.type === "response.completed") completed = event.response;
}
console.log(JSON.stringify({
  first: first.output_text,
  second: second.output_text,
  secondPrevious: second.previous_response_id === first.id,
  types,
  sequence,
  streamed: completed.output_text ?? completed.output[0].content[0].text,
  streamedId: completed.id,
}));
