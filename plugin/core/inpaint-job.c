/* inpaint-job.c — img2img of a selection at native resolution, the GIMP side (the plan and
 * the masks are inpaint.c's): read the context around the selection, scale it to the working
 * size, and after the engine, scale the result back and insert it as a layer that covers
 * exactly the feathered selection, with that feathered selection as its layer mask.
 * Main thread only (libgimp). */
#include <string.h>

#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>

#include "inpaint.h"
#include "sd35-core-private.h"

struct _Sd35Inpaint
{
  struct sd35_inpaint_plan plan;
  Sd35Box                  context;  /* image coordinates */
  Sd35Box                  region;   /* the layer: where the composite mask is > 0 */
  gfloat                  *composite;  /* region.width × region.height */
};

void
_sd35_inpaint_free (Sd35Inpaint *inpaint)
{
  if (inpaint == NULL)
    return;
  g_free (inpaint->composite);
  g_free (inpaint);
}

static gfloat *
crop (const gfloat *src, gint src_w, gint channels, const struct sd35_rect *r)
{
  gfloat *dst = g_try_malloc ((gsize) r->width * r->height * channels * sizeof (gfloat));

  if (dst == NULL)
    return NULL;
  for (gint y = 0; y < r->height; y++)
    memcpy (dst + (gsize) y * r->width * channels,
            src + ((gsize) (r->y + y) * src_w + r->x) * channels,
            (gsize) r->width * channels * sizeof (gfloat));
  return dst;
}

static gboolean
oom (GError **error, const gchar *what)
{
  g_set_error (error, SD35_PLUGIN_ERROR, 0, _("Out of memory for %s"), what);
  return FALSE;
}

gboolean
_sd35_inpaint_prepare (Sd35Job       *job,
                       GimpDrawable  *drawable,
                       gint          *gen_w,
                       gint          *gen_h,
                       GError       **error)
{
  struct sd35_inpaint_options o;
  struct sd35_rect            sel, bounds, r;
  Sd35Inpaint                *ip;
  guint8                     *rgb = NULL;
  gfloat                     *selmask = NULL, *comp = NULL, *samp = NULL;
  gint                        off_x = 0, off_y = 0, cw, ch;
  gboolean                    ok = FALSE;

  gimp_drawable_get_offsets (drawable, &off_x, &off_y);
  sel = (struct sd35_rect) { job->box.x, job->box.y, job->box.width, job->box.height };
  bounds = (struct sd35_rect) { off_x, off_y, gimp_drawable_get_width (drawable),
                                gimp_drawable_get_height (drawable) };
  sd35_inpaint_options_init (&o);
  o.margin = job->request.context_margin;
  o.work_width = job->request.width;    /* 0 = ≈ 1 MP */
  o.work_height = job->request.height;
  ip = g_new0 (Sd35Inpaint, 1);
  if (sd35_inpaint_plan (&sel, &bounds, &o, &ip->plan) != 0)
    {
      g_set_error (error, SD35_PLUGIN_ERROR, 0, _("The selection does not lie on the layer"));
      _sd35_inpaint_free (ip);
      return FALSE;
    }
  ip->context = (Sd35Box) { ip->plan.context.x, ip->plan.context.y, ip->plan.context.width,
                            ip->plan.context.height };
  cw = ip->context.width;
  ch = ip->context.height;

  if ((rgb = sd35_pixels_read_rgb (drawable, &ip->context, error)) == NULL ||
      (selmask = sd35_selection_read_mask (job->image, &ip->context, error)) == NULL)
    goto done;
  if ((comp = sd35_inpaint_composite_mask (selmask, cw, ch, ip->plan.feather)) == NULL)
    {
      oom (error, _("the feathered selection"));
      goto done;
    }
  if (sd35_inpaint_mask_bounds (comp, cw, ch, &r) != 0)
    {
      g_set_error (error, SD35_PLUGIN_ERROR, 0,
                   _("The selection is empty on this layer: nothing to regenerate"));
      goto done;
    }
  ip->region = (Sd35Box) { ip->context.x + r.x, ip->context.y + r.y, r.width, r.height };
  if ((ip->composite = crop (comp, cw, 1, &r)) == NULL)
    {
      oom (error, _("the feathered selection"));
      goto done;
    }

  /* the engine's inputs at the working size */
  job->init_rgb = sd35_pixels_resize (rgb, cw, ch, 3, FALSE, ip->plan.work_width,
                                      ip->plan.work_height);
  if (job->init_rgb == NULL)
    {
      oom (error, _("the scaled input"));
      goto done;
    }
  if (job->request.use_selection_mask)
    {
      samp = sd35_inpaint_sampling_mask (selmask, cw, ch, ip->plan.grow, ip->plan.feather);
      job->mask = samp == NULL ? NULL
                  : sd35_pixels_resize (samp, cw, ch, 1, TRUE, ip->plan.work_width,
                                        ip->plan.work_height);
      if (job->mask == NULL)
        {
          oom (error, _("the scaled mask"));
          goto done;
        }
    }
  *gen_w = ip->plan.work_width;
  *gen_h = ip->plan.work_height;
  job->box = ip->region;
  job->add_mask = FALSE;  /* the layer gets the feathered selection instead */
  g_printerr ("gimp-sd35: img2img at native resolution: selection (%d,%d) %d×%d, context "
              "(%d,%d) %d×%d (margin %d), working size %d×%d, layer (%d,%d) %d×%d "
              "(feather %d)\n", sel.x, sel.y, sel.width, sel.height, ip->context.x,
              ip->context.y, cw, ch, ip->plan.margin, ip->plan.work_width,
              ip->plan.work_height, ip->region.x, ip->region.y, ip->region.width,
              ip->region.height, ip->plan.feather);
  job->inpaint = ip;
  ip = NULL;
  ok = TRUE;
done:
  g_free (rgb);
  g_free (selmask);
  g_free (comp);
  g_free (samp);
  _sd35_inpaint_free (ip);
  return ok;
}

/* Writes mask (w × h, [0, 1]) into the layer mask, in the mask's own encoding. */
static void
write_mask (GimpLayerMask *mask,
            const gfloat  *values,
            gint           w,
            gint           h)
{
  GeglBuffer  *buffer = gimp_drawable_get_buffer (GIMP_DRAWABLE (mask));
  const gchar *encoding = babl_format_get_encoding (gegl_buffer_get_format (buffer));

  gegl_buffer_set (buffer, GEGL_RECTANGLE (0, 0, w, h), 0,
                   babl_format (g_str_has_prefix (encoding, "Y'") ? "Y' float" : "Y float"),
                   values, GEGL_AUTO_ROWSTRIDE);
  g_object_unref (buffer);
  gimp_drawable_update (GIMP_DRAWABLE (mask), 0, 0, w, h);
}

GimpLayer *
_sd35_inpaint_insert_layer (Sd35Job                  *job,
                            const struct sd35_result *result,
                            const gchar              *name,
                            GError                  **error)
{
  Sd35Inpaint     *ip = job->inpaint;
  struct sd35_rect r = { ip->region.x - ip->context.x, ip->region.y - ip->context.y,
                         ip->region.width, ip->region.height };
  gfloat          *rgba, *full, *part;
  GimpLayer       *layer;
  GimpLayerMask   *mask;

  if ((rgba = sd35_pixels_result_rgba (result, error)) == NULL)
    return NULL;
  full = sd35_pixels_resize (rgba, result->width, result->height, 4, TRUE,
                             ip->context.width, ip->context.height);
  g_free (rgba);
  part = full == NULL ? NULL : crop (full, ip->context.width, 4, &r);
  g_free (full);
  if (part == NULL)
    {
      oom (error, _("the scaled result"));
      return NULL;
    }
  layer = sd35_pixels_insert_layer (job->image, name, part, r.width, r.height, &ip->region,
                                    error);
  g_free (part);
  if (layer == NULL)
    return NULL;
  mask = gimp_layer_create_mask (layer, GIMP_ADD_MASK_WHITE);
  if (mask == NULL || ! gimp_layer_add_mask (layer, mask))
    {
      g_set_error_literal (error, SD35_PLUGIN_ERROR, 0,
                           _("Could not add the feathered selection as layer mask"));
      gimp_image_remove_layer (job->image, layer);
      return NULL;
    }
  write_mask (mask, ip->composite, r.width, r.height);
  return layer;
}

gchar *
_sd35_inpaint_settings_json (Sd35Job     *job,
                             const gchar *json)
{
  Sd35Inpaint *ip = job->inpaint;
  JsonParser  *parser = json_parser_new ();
  JsonNode    *root;
  JsonObject  *o, *in;
  JsonArray   *a;
  gchar       *out = NULL;

  if (ip != NULL && json_parser_load_from_data (parser, json, -1, NULL) &&
      JSON_NODE_HOLDS_OBJECT (root = json_parser_get_root (parser)))
    {
      JsonGenerator *gen = json_generator_new ();

      o = json_node_get_object (root);
      in = json_object_new ();
      a = json_array_new ();
      json_array_add_int_element (a, ip->context.x);
      json_array_add_int_element (a, ip->context.y);
      json_array_add_int_element (a, ip->context.width);
      json_array_add_int_element (a, ip->context.height);
      json_object_set_array_member (in, "context", a);
      a = json_array_new ();
      json_array_add_int_element (a, ip->plan.work_width);
      json_array_add_int_element (a, ip->plan.work_height);
      json_object_set_array_member (in, "working-size", a);
      json_object_set_int_member (in, "margin", ip->plan.margin);
      json_object_set_int_member (in, "feather", ip->plan.feather);
      json_object_set_object_member (o, "native-resolution", in);
      json_generator_set_root (gen, root);
      out = json_generator_to_data (gen, NULL);
      g_object_unref (gen);
    }
  g_object_unref (parser);
  return out != NULL ? out : g_strdup (json);
}
