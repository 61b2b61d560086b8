// ESLint (flat config): typescript-eslint with type information, the React hooks rules, and
// the import zones of bulletproof-react: app -> features -> shared code (api, components,
// lib), and a feature never imports another feature. `make test` runs it (web-test) with
// --max-warnings=0; src/lint.test.ts proves the zones catch a planted cross-feature import.

import { readdirSync } from "node:fs";
import path from "node:path";
import js from "@eslint/js";
import prettier from "eslint-config-prettier/flat";
import { createTypeScriptImportResolver } from "eslint-import-resolver-typescript";
import { importX } from "eslint-plugin-import-x";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import { defineConfig } from "eslint/config";
import { configs as ts } from "typescript-eslint";

const root = import.meta.dirname;

/** Every feature folder, read from disk: a new feature is fenced off from the others at once. */
export const FEATURES = readdirSync(path.join(root, "src/features"), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

/** Shared code: used by features and the app, never using them. */
const SHARED = ["./src/api", "./src/components", "./src/lib"];

export const ZONES = [
  // A feature imports only itself among the features (compose features in src/app).
  ...FEATURES.map((name) => ({
    target: `./src/features/${name}`,
    from: "./src/features",
    except: [`./${name}`],
    message:
      "A feature never imports another feature: move what both need to src/components or src/lib, or compose them in src/app.",
  })),
  // One direction: app -> features -> shared.
  {
    target: "./src/features",
    from: "./src/app",
    message: "Features do not import the app; the app composes features.",
  },
  {
    target: SHARED,
    from: ["./src/features", "./src/app"],
    message: "Shared code (api, components, lib) never imports features or the app.",
  },
];

export default defineConfig(
  // Generated files are checked against their generators instead (tests/unit/test_web_generated.py).
  { ignores: ["dist/", "node_modules/", "coverage/", "src/lib/*.gen.ts"] },
  js.configs.recommended,
  ts.recommendedTypeChecked,
  reactHooks.configs.flat["recommended-latest"],
  importX.flatConfigs.recommended,
  importX.flatConfigs.typescript,
  {
    languageOptions: {
      ecmaVersion: 2022,
      globals: { ...globals.browser },
      parserOptions: { projectService: true, tsconfigRootDir: root },
    },
    settings: {
      "import-x/resolver-next": [
        createTypeScriptImportResolver({ project: path.join(root, "tsconfig.json") }),
      ],
    },
    rules: {
      "import-x/no-restricted-paths": ["error", { basePath: root, zones: ZONES }],
      "import-x/no-cycle": "error",
      "import-x/no-self-import": "error",
      "import-x/no-useless-path-segments": "error",
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
    },
  },
  {
    // Node scripts and configs: plain JavaScript, no type information.
    files: ["**/*.{js,mjs}"],
    extends: [ts.disableTypeChecked],
    languageOptions: { globals: { ...globals.node } },
  },
  prettier,
);
