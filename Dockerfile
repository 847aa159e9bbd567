FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY lib lib
COPY workers workers
COPY scripts scripts
RUN npm ci && npm prune --omit=dev
EXPOSE 11211
ENTRYPOINT ["node", "dist/lib/cli.js"]
CMD ["-p", "11211", "-m", "64", "-t", "2", "-v"]
