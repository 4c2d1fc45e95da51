; Script-Fu checks of plug-in-sd35-txt2img (the v2 dialect, GIMP's default in batch mode).
; The caller defines sd35-model (a release folder):
;   -b '(begin (define sd35-model "/…/model") (load "tests/gimp/check_plugin.scm"))'
; Prints "ok …" / "FAIL …" through gimp-message and a last "RESULT: PASS|FAIL".
(define sd35-failed #f)
(define (check c msg)
  (gimp-message (string-append (if c "ok   " "FAIL ") msg))
  (if (not c) (set! sd35-failed #t)))
(define (layer-count img) (vector-length (car (gimp-image-get-layers img))))

(let* ((img (car (gimp-image-new 100 80 RGB)))
       (bg  (car (gimp-layer-new img "bg" 100 80 RGB-IMAGE 100 LAYER-MODE-NORMAL))))
  (gimp-image-insert-layer img bg 0 0)
  (check (defined? 'plug-in-sd35-txt2img) "plug-in-sd35-txt2img is callable from Script-Fu")

  ; a bad model path: the call fails with an error and inserts nothing
  (let ((n (layer-count img)))
    (catch (check #t "bad model path: the call raised an error")
      (plug-in-sd35-txt2img #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector bg)
                            #:prompt "script fox" #:model "/nonexistent/model.safetensors"
                            #:seed 7 #:steps 2 #:width 64 #:height 48)
      (check #f "bad model path: the call should have failed"))
    (check (= n (layer-count img)) "bad model path: layer count unchanged"))

  ; a good call: one 64x48 layer, the seed asked for
  (catch (check #f "txt2img with the test model raised an error")
    (let* ((r (plug-in-sd35-txt2img #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector bg)
                                    #:prompt "script fox" #:model sd35-model #:seed 7 #:steps 2
                                    #:width 64 #:height 48 #:sampler "euler"))
           (layers (car r)))
      (check (= (vector-length layers) 1) "txt2img returned one layer")
      (check (= (layer-count img) 2) "txt2img added one layer")
      (check (= (car (gimp-drawable-get-width (vector-ref layers 0))) 64) "layer width 64")
      (check (= (car (gimp-drawable-get-height (vector-ref layers 0))) 48) "layer height 48")
      (check (= (cadr r) 7) "returned seed 7"))))

(gimp-message (if sd35-failed "RESULT: FAIL" "RESULT: PASS"))
