// Package ociarchive writes an OCI image layout tarball, what `ctr images
// import` reads, so that the e2e tests and the bench can give containerd
// images made on this machine: there is no registry to pull from. The
// images share one uncompressed layer that the caller makes; blobs are
// content-addressed and every timestamp is fixed, so the same layer and
// images give the same archive.
package ociarchive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// Image is one image of the archive.
type Image struct {
	Name       string   // full reference, e.g. localhost/e2e-pause:latest
	Entrypoint []string // the image config's Entrypoint
	Cmd        []string // the image config's Cmd
}

// mtime is every date the archive holds.
var mtime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// blob is a content-addressed blob of the archive.
type blob struct {
	mediaType string
	data      []byte
}

func (b blob) digest() string {
	sum := sha256.Sum256(b.data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (b blob) descriptor() map[string]any {
	return map[string]any{"mediaType": b.mediaType, "digest": b.digest(), "size": len(b.data)}
}

// Write writes dir/images.oci.tar holding images, all of them with the
// one layer layerTar (an uncompressed tar of the root filesystem) and
// PATH=/bin, and returns its path.
func Write(dir, layerTar string, images []Image) (string, error) {
	layerData, err := os.ReadFile(layerTar)
	if err != nil {
		return "", err
	}
	layer := blob{"application/vnd.oci.image.layer.v1.tar", layerData}
	blobs := []blob{layer}
	var manifests []any
	for _, img := range images {
		cfg, err := json.Marshal(map[string]any{
			"architecture": runtime.GOARCH,
			"os":           "linux",
			"created":      mtime.Format(time.RFC3339),
			"config": map[string]any{
				"Env":        []string{"PATH=/bin"},
				"Entrypoint": img.Entrypoint,
				"Cmd":        img.Cmd,
				"WorkingDir": "/",
			},
			"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layer.digest()}},
		})
		if err != nil {
			return "", err
		}
		cfgBlob := blob{"application/vnd.oci.image.config.v1+json", cfg}
		man, err := json.Marshal(map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        cfgBlob.descriptor(),
			"layers":        []any{layer.descriptor()},
		})
		if err != nil {
			return "", err
		}
		manBlob := blob{"application/vnd.oci.image.manifest.v1+json", man}
		blobs = append(blobs, cfgBlob, manBlob)
		desc := manBlob.descriptor()
		desc["platform"] = map[string]string{"architecture": runtime.GOARCH, "os": "linux"}
		// containerd names the imported image after this annotation.
		desc["annotations"] = map[string]string{"io.containerd.image.name": img.Name}
		manifests = append(manifests, desc)
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     manifests,
	})
	if err != nil {
		return "", err
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) error {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: mtime}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return "", err
	}
	seen := map[string]bool{}
	for _, b := range blobs {
		d := b.digest()
		if seen[d] {
			continue // two images with the same config
		}
		seen[d] = true
		if err := add("blobs/sha256/"+d[len("sha256:"):], b.data); err != nil {
			return "", err
		}
	}
	if err := add("index.json", index); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "images.oci.tar")
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}
