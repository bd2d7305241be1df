// Runs one role of a verifier story in its own process, as the recorder (scripts/record/stories.mjs)
// starts them:
//
//   node scripts/record/stories/run.mjs <story> <service>    a service, until SIGTERM
//   node scripts/record/stories/run.mjs <story> driver       the story's traffic, then exit
const [name, role] = process.argv.slice(2);
const story = await import(`./${name}.mjs`);
if (role === 'driver') {
  await story.driver();
  console.log(`${name} driver: done`);
  process.exit(0);
} else if (story.services[role]) {
  await story.services[role].start();
} else {
  throw new Error(`story ${name} has no role ${role} (services: ${Object.keys(story.services).join(', ')}, driver)`);
}
