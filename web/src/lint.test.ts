// @vitest-environment node
// The import zones of eslint.config.js catch what they should and nothing else: code is
// linted through ESLint's Node API with the project's own config, and new feature folders
// planted on disk are fenced off from each other without any change to the config.

import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ESLint } from "eslint";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "..");
const RULE = "import-x/no-restricted-paths";
// Unique per run, so two checkouts or runs never share the planted folders.
const A = `planted-a-${process.pid}`;
const B = `planted-b-${process.pid}`;

let eslint: ESLint;

// Loading ESLint, the config and its plugins takes seconds, more on a busy machine.
const SLOW = 60_000;

beforeAll(async () => {
  for (const name of [A, B]) {
    mkdirSync(path.join(root, "src/features", name), { recursive: true });
    writeFileSync(path.join(root, "src/features", name, "index.ts"), "export const value = 1;\n");
  }
  // Created after the folders: the config reads the feature list when it loads.
  eslint = new ESLint({
    cwd: root,
    // Only the zone rule, without type information: the linted files exist only in memory.
    ruleFilter: ({ ruleId }) => ruleId === RULE,
    overrideConfig: { languageOptions: { parserOptions: { projectService: false } } },
  });
  await eslint.lintText("export {};\n", { filePath: path.join(root, "src/lib/warm-up.ts") });
}, SLOW);

afterAll(() => {
  for (const name of [A, B]) rmSync(path.join(root, "src/features", name), { recursive: true });
});

async function zoneErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  if (!result) throw new Error(`no lint result for ${file}`);
  const fatal = result.messages.filter((m) => m.fatal);
  expect(fatal).toEqual([]);
  return result.messages.filter((m) => m.ruleId === RULE).map((m) => m.message);
}

describe("import zones", { timeout: SLOW }, () => {
  it("refuses a planted feature importing another planted feature", async () => {
    const errors = await zoneErrors(
      `src/features/${A}/x.ts`,
      `import { value } from "../${B}";\nexport const y = value;\n`,
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("A feature never imports another feature");
  });

  it("refuses an existing feature importing another one", async () => {
    const errors = await zoneErrors(
      "src/features/search/x.ts",
      'export { TicketDetail } from "../tickets/TicketDetail";\n',
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("A feature never imports another feature");
  });

  it("refuses shared code importing a feature, and a feature importing the app", async () => {
    expect(await zoneErrors("src/lib/x.ts", `export { value } from "../features/${A}";\n`)).toEqual(
      [expect.stringContaining("Shared code")],
    );
    expect(
      await zoneErrors(
        "src/components/x.ts",
        'export * from "../features/tickets/TicketDetail";\n',
      ),
    ).toEqual([expect.stringContaining("Shared code")]);
    expect(
      await zoneErrors(`src/features/${A}/x.ts`, 'export { App } from "../../app/App";\n'),
    ).toEqual([expect.stringContaining("Features do not import the app")]);
  });

  it("allows imports within a feature, of shared code, and of features by the app", async () => {
    expect(
      await zoneErrors(
        `src/features/${A}/y.ts`,
        'export { value } from "./index";\nexport { errorMessage } from "../../lib/api";\n' +
          'export { Loading } from "../../components/States";\nexport { useAgents } from "../../api/agents";\n',
      ),
    ).toEqual([]);
    expect(await zoneErrors("src/app/x.ts", `export { value } from "../features/${A}";\n`)).toEqual(
      [],
    );
  });
});
